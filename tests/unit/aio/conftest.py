from tests.unit.aio.aiohelpers import informers

__all__ = ["informers"]

"""The ``device.nvidia.com`` API group."""

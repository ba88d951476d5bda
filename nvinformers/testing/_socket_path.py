"""Where the fake server listens: a Unix socket path made bindable safely (parents created 0755,
a stale socket replaced, anything else refused and left alone) and removed again on stop, and
the ``unix:`` targets and environment that name it.

Thread-safety: the functions touch the file system only; the caller serializes start and stop.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import uuid
from typing import Final

import grpc

from nvinformers.clientset import SOCK_ENV_VAR, TARGET_ENV_VAR
from nvinformers.errors import NvInformersError

__all__ = [
    "FakeServerError",
    "ServerSocket",
    "DEFAULT_SOCKET_PATH",
    "TARGET_ENV",
    "SOCK_ENV",
    "target_to_socket_path",
    "default_socket_path",
]

_log = logging.getLogger("nvinformers.testing.server")  # the fake server, whichever part logs

#: The Device API's default socket (``unix:///var/run/nvidia-device-api/device-api.sock``).
DEFAULT_SOCKET_PATH: Final = "/var/run/nvidia-device-api/device-api.sock"
#: Environment variable naming the target (``unix:///path`` or ``unix:/path``).
TARGET_ENV: Final = TARGET_ENV_VAR
#: The newer server generation's variable, read after :data:`TARGET_ENV`.
SOCK_ENV: Final = SOCK_ENV_VAR
_SOCKET_MODE = 0o660
_PARENT_MODE = 0o755
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class FakeServerError(NvInformersError, RuntimeError):
    """The fake server cannot start: the socket path is unusable, or something else listens."""


class ServerSocket:
    """The socket file of one server: its path, made bindable on :meth:`bind` and removed
    again, with the directories made for it, on :meth:`remove`.

    Args:
        socket_path: a path or a ``unix:///path`` / ``unix:/path`` target; None: a fresh
            private directory under ``/tmp`` (created on bind, removed on remove).

    Raises:
        ValueError: a TCP target, or one that names no path.

    Thread-safety: none; the server calls it under its lifecycle lock.
    """

    def __init__(self, socket_path: str | os.PathLike[str] | None) -> None:
        if socket_path is None:
            # Not from the seeded generator: two servers built with one seed must not collide.
            private_dir = f"/tmp/nvfake-{uuid.uuid4().hex[:12]}"
            self.path = os.path.join(private_dir, "device-api.sock")
            self._private_dir: str | None = private_dir
        else:
            path = os.fspath(socket_path)
            if path.startswith("unix:"):
                path = target_to_socket_path(path)
            self.path = os.path.abspath(path)
            self._private_dir = None
        self._created_dirs: list[str] = []  # made by bind(), for remove()
        self._socket_id: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket

    def bind(self, server: grpc.Server) -> None:
        """Make the path bindable (see :func:`_prepare_socket_path`), bind ``server`` to it
        and set the socket's mode to 0660 before anyone is served.

        Raises:
            FakeServerError: the path is a live socket, a symlink or not a socket, or binding
                failed.
        """
        if self._private_dir is not None and not os.path.isdir(self._private_dir):
            os.mkdir(self._private_dir, 0o700)
        self._created_dirs = _prepare_socket_path(self.path)
        try:
            bound = server.add_insecure_port(f"unix:{self.path}")
        except RuntimeError as exc:
            raise FakeServerError(f"cannot bind {self.path}: {exc}") from exc
        if not bound:
            raise FakeServerError(f"cannot bind {self.path}")
        # grpc binds with the process umask; tighten before serving anyone.
        os.chmod(self.path, _SOCKET_MODE)
        st = os.lstat(self.path)
        self._socket_id = (st.st_dev, st.st_ino)

    def remove(self) -> None:
        """Remove the socket :meth:`bind` made (never whatever replaced it) and the directories
        it created, if empty."""
        path = self.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        # Remove only the socket this server bound, never whatever replaced it.
        if st is not None and (st.st_dev, st.st_ino) == self._socket_id:
            os.unlink(path)
        self._socket_id = None
        created, self._created_dirs = self._created_dirs, []
        # The private directory is the outermost (bind() made none inside it but the socket).
        _remove_created([self._private_dir, *created] if self._private_dir else created)


def _probe_listening(path: str) -> bool:
    """True when something accepts connections on the Unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        raise FakeServerError(f"cannot tell whether {path} is in use: {exc}") from exc
    finally:
        probe.close()
    return True


def _make_parents(path: str) -> list[str]:
    """Create the missing directories above ``path``, each 0755 whatever the umask.

    ``os.makedirs(mode=)`` applies the umask, and to the last directory only; this creates one
    level at a time and sets each mode explicitly.

    Returns:
        The directories created, outermost first (for :func:`_remove_created`).
    """
    missing: list[str] = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    created: list[str] = []
    try:
        for directory in reversed(missing):
            try:
                os.mkdir(directory, _PARENT_MODE)
            except FileExistsError:
                continue  # created meanwhile by someone else: not ours to chmod or remove
            created.append(directory)
            os.chmod(directory, _PARENT_MODE)
    except BaseException:
        _remove_created(created)
        raise
    return created


def _remove_created(created: list[str]) -> None:
    """Remove the directories :func:`_make_parents` created, innermost first, if empty."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            _log.debug("leaving %s in place (not empty or already gone)", directory)
            return  # its parents are not empty either


def _prepare_socket_path(path: str) -> list[str]:
    """Make ``path`` bindable, refusing anything that is not a stale socket.

    Creates the missing parent directories (each 0755, whatever the umask); replaces a stale
    socket (nothing listening); refuses a live socket, a symbolic link, or anything that is not
    a socket, and never deletes or follows those.

    Returns:
        The directories created (removed again by the caller on stop or failure).
    """
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise FakeServerError(
            f"socket path {path} is too long for a Unix socket ({_SUN_PATH_MAX} bytes at most)"
        )
    created = _make_parents(path)
    try:
        _check_socket_path(path)
    except BaseException:
        _remove_created(created)
        raise
    return created


def _check_socket_path(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise FakeServerError(f"refusing to serve on {path}: it is a symbolic link")
    if not stat.S_ISSOCK(st.st_mode):
        raise FakeServerError(
            f"refusing to serve on {path}: it exists and is not a socket (left untouched)"
        )
    if _probe_listening(path):
        raise FakeServerError(f"refusing to serve on {path}: another server is listening there")
    _log.info("removing stale socket %s", path)
    os.unlink(path)


def target_to_socket_path(target: str) -> str:
    """``unix:///p`` / ``unix:/p`` / ``/p`` → ``/p`` (also relative paths: ``unix:p``, ``p``).

    Raises:
        ValueError: a TCP target (the fake server listens on Unix sockets only).
    """
    if target.startswith("unix://"):
        path = target[len("unix://") :]
    elif target.startswith("unix:"):
        path = target[len("unix:") :]
    elif target.startswith("/") or ("://" not in target and ":" not in target):
        path = target
    else:
        raise ValueError(f"the fake server listens on Unix sockets only; cannot serve {target!r}")
    if not path:
        raise ValueError(f"target {target!r} names no socket path")
    return path


def default_socket_path() -> str:
    """The socket the environment names, read as the clientset reads it:
    ``$NVIDIA_DEVICE_API_TARGET``, then ``$NVIDIA_DEVICE_API_SOCK``, then the default socket.

    Raises:
        ValueError: a malformed target (the message names the variable), or a TCP one.
    """
    from nvinformers.clientset import Config

    target = Config().parsed_target()
    if target.path is None:
        raise ValueError(
            "the fake server listens on Unix sockets only; the environment names "
            f"{target.original!r}"
        )
    return target.path

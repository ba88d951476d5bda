"""Parsing and validation of gRPC targets for the Device API.

The Device API listens on a Unix domain socket (``unix:///var/run/nvidia-device-api/device-api.sock``);
TCP targets (``host:port``) must work as well. :func:`parse_target` accepts the subset of gRPC's
target syntax that makes sense for a node-local, plaintext server and rejects everything else with a
:class:`ValueError` that names the target and the reason, before any channel is built. gRPC itself
would accept many malformed targets and only fail (or hang) at the first call, with a message that
does not mention the target.

Accepted forms:

==============================  ====  =========================================================
form                            kind  notes
==============================  ====  =========================================================
``unix:///abs/path.sock``       unix  the canonical form
``unix:/abs/path.sock``         unix  same socket; normalised to ``unix:///abs/path.sock``
``unix:relative/path.sock``     unix  relative to the process's working directory (gRPC semantics)
``/abs/path.sock``              unix  a bare socket path (as ``fake-server --socket`` takes);
                                      normalised to ``unix:///abs/path.sock``
``./rel.sock``, ``../rel.sock``  unix  a bare relative path; normalised to ``unix:./rel.sock``
``host:port``                   tcp   DNS name, IPv4 address or bracketed IPv6 (``[::1]:50051``)
``dns:///host:port``            tcp   also ``dns:host:port``; a DNS-server authority is rejected
``ipv4:1.2.3.4:80[,...]``       tcp   one or more literal IPv4 addresses, each with a port
``ipv6:[::1]:80[,...]``         tcp   one or more literal bracketed IPv6 addresses, each with a port
``passthrough:///host:port``    tcp   the address is handed to the transport unresolved
==============================  ====  =========================================================

Not accepted (each with its own message): empty or blank targets, whitespace or control
characters (including NUL), unknown schemes (``http://...``), ``unix://host/path`` (an authority),
a Unix path longer than 107 bytes (the kernel's ``sun_path`` limit), URI-special characters (``?``,
``#``, ``%``) in a Unix path, a host without a port, a port outside 1-65535, unbracketed IPv6
addresses.

The parser is total: for any ``str`` it either returns a :class:`Target` or raises ``ValueError``
(a property test feeds it arbitrary text).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Target", "parse_target", "MAX_UNIX_PATH_BYTES"]

#: ``sizeof(sockaddr_un.sun_path) - 1`` on Linux: the longest socket path a client can connect to.
MAX_UNIX_PATH_BYTES = 107

_MAX_PORT = 65535
_SCHEMES = ("unix", "dns", "ipv4", "ipv6", "passthrough")
_SUPPORTED = (
    "unix:///path, unix:relative/path, host:port, dns:///host:port, ipv4:, ipv6:, passthrough:"
)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# RFC 1123 host names (labels of letters, digits and hyphens), plus "_" which resolvers tolerate.
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A validated gRPC target.

    Attributes:
        kind: ``"unix"`` for a Unix domain socket, ``"tcp"`` for a network address.
        address: the target string to hand to gRPC (normalised: ``unix:/p`` becomes ``unix:///p``).
        path: the socket path for ``unix`` targets (relative paths stay relative), else None.
        original: the target exactly as given.
    """

    kind: Literal["unix", "tcp"]
    address: str
    path: str | None
    original: str

    def __str__(self) -> str:
        return self.address


def parse_target(target: str) -> Target:
    """Parse and validate a gRPC target (see the module docstring for the accepted forms).

    Args:
        target: the target, for example ``unix:///run/device-api.sock`` or ``localhost:50051``.

    Returns:
        The validated :class:`Target`.

    Raises:
        ValueError: the target is malformed or unsupported; the message quotes the target and says
            what is wrong with it.
    """
    if not isinstance(target, str):
        raise ValueError(f"gRPC target must be a string, got {type(target).__name__}")
    if not target:
        raise ValueError(
            "gRPC target is empty; set Config(target=...) or NVIDIA_DEVICE_API_TARGET, "
            "for example unix:///var/run/nvidia-device-api/device-api.sock"
        )
    if not target.strip():
        raise ValueError(f"gRPC target {target!r} is blank")
    bad = next((c for c in target if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        what = "a NUL byte" if bad == "\0" else f"whitespace or a control character ({bad!r})"
        raise ValueError(f"gRPC target {target!r} contains {what}")

    if target.startswith(("/", "./", "../")) and not target.startswith("//"):
        # A bare socket path: the form fake-server --socket and the Device API docs use. Never a
        # valid host:port, so accepting it cannot change what another target means.
        return _unix(target, target)
    scheme, rest = _split_scheme(target)
    if scheme is None:
        return Target("tcp", _host_port(target, rest), None, target)
    if scheme == "unix":
        return _unix(target, rest)
    if scheme == "passthrough":
        endpoint = _host_port(target, _no_authority(target, rest))
        return Target("tcp", f"passthrough:///{endpoint}", None, target)
    if scheme == "dns":
        return Target(
            "tcp", f"dns:///{_host_port(target, _no_authority(target, rest))}", None, target
        )
    # ipv4: / ipv6: take a comma-separated list of literal addresses, each with a port.
    if rest.startswith("//"):
        raise _invalid(target, f"{scheme}: takes addresses directly ({scheme}:a:port)")
    if not rest:
        raise _invalid(target, f"{scheme}: needs at least one address:port")
    addresses = [_host_port(target, part, family=scheme) for part in rest.split(",")]
    return Target("tcp", f"{scheme}:{','.join(addresses)}", None, target)


def _invalid(target: str, problem: str) -> ValueError:
    return ValueError(f"gRPC target {target!r}: {problem}")


def _split_scheme(target: str) -> tuple[str | None, str]:
    """Split ``scheme:rest``; None when the target is a bare ``host:port``."""
    if "://" in target:
        scheme, rest = target.split("://", 1)
        if not _SCHEME_RE.fullmatch(scheme) or scheme not in _SCHEMES:
            raise ValueError(
                f"gRPC target {target!r} has an unknown scheme {scheme!r}; supported: {_SUPPORTED}"
            )
        return scheme, "//" + rest
    head, sep, rest = target.partition(":")
    if sep and head in _SCHEMES:
        return head, rest
    return None, target


def _no_authority(target: str, rest: str) -> str:
    """Strip the empty authority of ``scheme:///x``; reject a non-empty one."""
    if rest.startswith("//"):
        authority, slash, endpoint = rest[2:].partition("/")
        if authority or not slash:
            raise _invalid(
                target, f"an authority ({authority!r}) is not supported; use scheme:///host:port"
            )
        rest = endpoint
    if not rest:
        raise ValueError(f"gRPC target {target!r} has no address after the scheme")
    return rest


def _unix(target: str, rest: str) -> Target:
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if authority:
            raise _invalid(
                target,
                f"unix targets take no host ({authority!r}); "
                "use unix:///absolute/path or unix:relative/path",
            )
        path = slash + path
    else:
        path = rest
    if not path or path == "/":
        raise _invalid(target, "unix target without a socket path")
    special = next((c for c in path if c in "?#%"), None)
    if special is not None:
        raise _invalid(
            target,
            f"the socket path contains {special!r}, which gRPC parses as "
            "part of a URI; rename the socket",
        )
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _invalid(target, "the socket path is not valid UTF-8") from exc
    if size > MAX_UNIX_PATH_BYTES:
        raise _invalid(
            target,
            f"the socket path is {size} bytes long; Unix sockets allow at "
            f"most {MAX_UNIX_PATH_BYTES}",
        )
    address = f"unix://{path}" if path.startswith("/") else f"unix:{path}"
    return Target("unix", address, path, target)


def _host_port(target: str, hostport: str, *, family: str | None = None) -> str:
    """Validate ``host:port`` (``[v6]:port`` for IPv6) and return it unchanged."""
    if not hostport:
        raise _invalid(target, "empty address")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise _invalid(target, f"unterminated '[' in {hostport!r}")
        host, after = hostport[1:close], hostport[close + 1 :]
        if not after:
            raise _invalid(target, f"address {hostport!r} has no port")
        if not after.startswith(":"):
            raise _invalid(target, f"expected ':port' after {hostport[: close + 1]!r}")
        port = after[1:]
        _check_ipv6(target, host)
        if family == "ipv4":
            raise _invalid(target, f"ipv4: cannot take IPv6 address {host!r}")
    else:
        host, sep, port = hostport.rpartition(":")
        if not sep and family is None and hostport.startswith(("/", ".")):
            raise ValueError(
                f"gRPC target {target!r} looks like a socket path; write unix://{hostport}"
                if hostport.startswith("/")
                else f"gRPC target {target!r} looks like a socket path; write unix:{hostport}"
            )
        if not sep:
            raise _invalid(target, f"address {hostport!r} has no port (want host:port)")
        if ":" in host:
            raise _invalid(target, "IPv6 addresses must be bracketed, as in [::1]:50051")
        if not host:
            raise _invalid(target, f"address {hostport!r} has no host")
        if family == "ipv6":
            raise _invalid(target, "ipv6: addresses must be bracketed ([::1]:80)")
        if family == "ipv4":
            try:
                ipaddress.IPv4Address(host)
            except ValueError as exc:
                raise _invalid(target, f"{host!r} is not an IPv4 address") from exc
        elif not _HOSTNAME_RE.fullmatch(host):
            if family is None and not port.isdigit():
                raise _invalid(
                    target, f"unknown scheme {host!r} or invalid host; supported: {_SUPPORTED}"
                )
            raise _invalid(target, f"{host!r} is not a valid host name")
    _check_port(target, hostport, port)
    return hostport


def _check_ipv6(target: str, host: str) -> None:
    address, _, zone = host.partition("%")
    try:
        ipaddress.IPv6Address(address)
    except ValueError as exc:
        raise _invalid(target, f"{host!r} is not an IPv6 address") from exc
    if "%" in host and not zone:
        raise _invalid(target, f"empty IPv6 zone in {host!r}")


def _check_port(target: str, hostport: str, port: str) -> None:
    if not port:
        raise _invalid(target, f"address {hostport!r} has an empty port")
    if not (port.isascii() and port.isdigit()):
        raise _invalid(
            target,
            f"port {port!r} is not a number (or the scheme is unknown; supported: {_SUPPORTED})",
        )
    if len(port) > 5 or not 1 <= int(port) <= _MAX_PORT:
        raise _invalid(target, f"port {port} is out of range 1-{_MAX_PORT}")

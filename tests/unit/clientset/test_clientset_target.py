"""parse_target: the accepted forms, every rejection with its reason, and fuzz safety."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvinformers.clientset import Target, parse_target
from nvinformers.clientset._target import MAX_UNIX_PATH_BYTES


@pytest.mark.parametrize(
    ("target", "kind", "address", "path"),
    [
        (
            "unix:///var/run/nvidia-device-api/device-api.sock",
            "unix",
            "unix:///var/run/nvidia-device-api/device-api.sock",
            "/var/run/nvidia-device-api/device-api.sock",
        ),
        ("unix:/tmp/a.sock", "unix", "unix:///tmp/a.sock", "/tmp/a.sock"),
        ("unix:relative/a.sock", "unix", "unix:relative/a.sock", "relative/a.sock"),
        ("unix:a.sock", "unix", "unix:a.sock", "a.sock"),
        (
            "unix:///tmp/dir with-dash_and.dots/s.sock".replace(" ", "-"),
            "unix",
            "unix:///tmp/dir-with-dash_and.dots/s.sock",
            "/tmp/dir-with-dash_and.dots/s.sock",
        ),
        ("/tmp/a.sock", "unix", "unix:///tmp/a.sock", "/tmp/a.sock"),
        ("./a.sock", "unix", "unix:./a.sock", "./a.sock"),
        ("../run/a.sock", "unix", "unix:../run/a.sock", "../run/a.sock"),
        ("localhost:50051", "tcp", "localhost:50051", None),
        ("127.0.0.1:1", "tcp", "127.0.0.1:1", None),
        (
            "device-api.kube-system.svc.cluster.local:65535",
            "tcp",
            "device-api.kube-system.svc.cluster.local:65535",
            None,
        ),
        ("[::1]:50051", "tcp", "[::1]:50051", None),
        ("[fe80::1%eth0]:80", "tcp", "[fe80::1%eth0]:80", None),
        ("dns:///localhost:50051", "tcp", "dns:///localhost:50051", None),
        ("dns:localhost:50051", "tcp", "dns:///localhost:50051", None),
        ("dns:///[::1]:8080", "tcp", "dns:///[::1]:8080", None),
        ("ipv4:127.0.0.1:80", "tcp", "ipv4:127.0.0.1:80", None),
        ("ipv4:10.0.0.1:80,10.0.0.2:81", "tcp", "ipv4:10.0.0.1:80,10.0.0.2:81", None),
        ("ipv6:[::1]:80", "tcp", "ipv6:[::1]:80", None),
        ("passthrough:///localhost:50051", "tcp", "passthrough:///localhost:50051", None),
    ],
)
def test_accepted_targets(target: str, kind: str, address: str, path: str | None) -> None:
    parsed = parse_target(target)
    assert parsed == Target(kind, address, path, target)  # type: ignore[arg-type]
    assert str(parsed) == address


def test_longest_unix_path_is_accepted_and_one_more_byte_is_not() -> None:
    longest = "/tmp/" + "a" * (MAX_UNIX_PATH_BYTES - len("/tmp/"))
    assert parse_target(f"unix://{longest}").path == longest
    with pytest.raises(ValueError, match=r"108 bytes long; Unix sockets allow at most 107"):
        parse_target(f"unix://{longest}a")


def test_path_length_counts_utf8_bytes() -> None:
    path = "/tmp/" + "é" * 52  # 5 + 104 bytes
    with pytest.raises(ValueError, match="109 bytes long"):
        parse_target(f"unix://{path}")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("", "gRPC target is empty"),
        ("   ", "is blank"),
        (" unix:///tmp/a.sock", "whitespace or a control character"),
        ("unix:///tmp/a.sock\n", "whitespace or a control character"),
        ("unix:///tmp/a\0.sock", "NUL byte"),
        ("unix:///tmp/a b.sock", "whitespace"),
        ("http://localhost:80", "unknown scheme 'http'"),
        ("grpc://localhost:80", "unknown scheme 'grpc'"),
        ("xds:///svc", "unknown scheme"),
        ("unix:", "unix target without a socket path"),
        ("unix://", "unix target without a socket path"),
        ("unix:///", "unix target without a socket path"),
        ("unix://host/tmp/a.sock", "unix targets take no host"),
        ("unix:///tmp/a.sock?x=1", "contains '\\?'"),
        ("unix:///tmp/a#b", "contains '#'"),
        ("unix:///tmp/a%20b", "contains '%'"),
        ("localhost", "has no port"),
        ("localhost:", "empty port"),
        ("localhost:0", "port 0 is out of range"),
        ("localhost:65536", "port 65536 is out of range"),
        ("localhost:9999999999", "out of range"),
        ("localhost:http", "port 'http' is not a number"),
        ("localhost:-1", "is not a number"),
        (":50051", "has no host"),
        ("::1:50051", "IPv6 addresses must be bracketed"),
        ("[::1]", "has no port"),
        ("[::1", "unterminated"),
        ("[::1]x", "expected ':port'"),
        ("[zz::1]:80", "not an IPv6 address"),
        ("[fe80::1%]:80", "empty IPv6 zone"),
        ("bad_host!:80", "unknown scheme|not a valid host name"),
        ("dns://8.8.8.8/localhost:53", "an authority"),
        ("dns:", "no address after the scheme"),
        ("dns:///localhost", "has no port"),
        ("ipv4:", "needs at least one address"),
        ("ipv4:localhost:80", "not an IPv4 address"),
        ("ipv4:[::1]:80", "cannot take IPv6"),
        ("ipv4://1.2.3.4:80", "takes addresses directly"),
        ("ipv4:1.2.3.4:80,", "empty address"),
        ("ipv6:::1:80", "must be bracketed"),
        ("passthrough:///", "no address after the scheme"),
        ("//host/device-api.sock", "looks like a socket path"),
        ("foo:bar", "is not a number"),
    ],
)
def test_rejected_targets_name_the_target_and_the_reason(target: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_target(target)
    if target.strip() and "\0" not in target:
        assert repr(target) in str(info.value)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_target(b"unix:///tmp/a.sock")  # type: ignore[arg-type]


def _parses_or_raises_value_error(text: str) -> None:
    try:
        parsed = parse_target(text)
    except ValueError:
        return
    assert parsed.kind in ("unix", "tcp")
    assert parse_target(parsed.address).address == parsed.address  # normal form is a fixed point


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_arbitrary_text_either_parses_or_raises_value_error(text: str) -> None:
    _parses_or_raises_value_error(text)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["unix:", "unix://", "unix:///", "dns:///", "dns:", "ipv4:", "ipv6:", ""]),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
)
def test_scheme_prefixed_junk_either_parses_or_raises_value_error(prefix: str, rest: str) -> None:
    _parses_or_raises_value_error(prefix + rest)

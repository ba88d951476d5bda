"""Config: target precedence, validation, user agent, and that it never loads gRPC."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import grpc
import pytest

from nvinformers.clientset import DEFAULT_TARGET, TARGET_ENV_VAR, Config
from nvinformers.clientset._config import DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH, user_agent

#: The newer server generation's variable (spelled out: the test pins the name users export).
SOCK_ENV_VAR = "NVIDIA_DEVICE_API_SOCK"


@pytest.fixture(autouse=True)
def _no_sock_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SOCK_ENV_VAR, raising=False)


def test_default_target_when_neither_explicit_nor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGET_ENV_VAR, raising=False)
    assert Config().resolved_target() == DEFAULT_TARGET
    assert DEFAULT_TARGET == "unix:///var/run/nvidia-device-api/device-api.sock"


def test_env_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV_VAR, "unix:///tmp/from-env.sock")
    assert Config().resolved_target() == "unix:///tmp/from-env.sock"


def test_explicit_target_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV_VAR, "unix:///tmp/from-env.sock")
    assert Config(target="localhost:50051").resolved_target() == "localhost:50051"


def test_empty_env_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV_VAR, "")
    assert Config().resolved_target() == DEFAULT_TARGET


def test_env_is_read_at_resolution_time_not_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGET_ENV_VAR, raising=False)
    config = Config()
    monkeypatch.setenv(TARGET_ENV_VAR, "unix:///tmp/later.sock")
    assert config.resolved_target() == "unix:///tmp/later.sock"


def test_bad_env_target_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV_VAR, "http://nope")
    with pytest.raises(ValueError, match=f"{TARGET_ENV_VAR}.*unknown scheme 'http'"):
        Config().resolved_target()


@pytest.mark.parametrize(
    ("explicit", "target_env", "sock_env", "expected"),
    [
        (None, None, None, DEFAULT_TARGET),
        (None, None, "unix:///tmp/sock.sock", "unix:///tmp/sock.sock"),
        (None, "", "unix:///tmp/sock.sock", "unix:///tmp/sock.sock"),
        (None, "unix:///tmp/target.sock", "unix:///tmp/sock.sock", "unix:///tmp/target.sock"),
        ("unix:///tmp/explicit.sock", "unix:///tmp/t.sock", "unix:///tmp/s.sock",
         "unix:///tmp/explicit.sock"),
        (None, None, "", DEFAULT_TARGET),
    ],
)  # fmt: skip
def test_target_precedence_is_explicit_then_target_then_sock_then_default(
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    target_env: str | None,
    sock_env: str | None,
    expected: str,
) -> None:
    for variable, value in ((TARGET_ENV_VAR, target_env), (SOCK_ENV_VAR, sock_env)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert Config(target=explicit).resolved_target() == expected


def test_the_sock_variable_is_exported_under_its_name() -> None:
    from nvinformers.clientset import _config as config

    assert getattr(config, "SOCK_ENV_VAR", None) == SOCK_ENV_VAR


def test_bad_sock_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TARGET_ENV_VAR, raising=False)
    monkeypatch.setenv(SOCK_ENV_VAR, "http://nope")
    with pytest.raises(ValueError, match=f"{SOCK_ENV_VAR}.*unknown scheme 'http'"):
        Config().resolved_target()


def test_unix_short_form_is_normalised() -> None:
    assert Config(target="unix:/run/x.sock").resolved_target() == "unix:///run/x.sock"


def test_callers_config_is_never_mutated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV_VAR, "unix:///tmp/from-env.sock")
    config = Config()
    before = dataclasses.asdict(config)
    config.resolved_target()
    config.resolved_user_agent()
    config.resolved_logger()
    assert dataclasses.asdict(config) == before
    assert config.target is None and config.user_agent is None and config.logger is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.target = "x:1"  # type: ignore[misc]


def test_replace_derives_a_validated_copy() -> None:
    config = Config(target="localhost:1")
    changed = dataclasses.replace(config, target="localhost:2")
    assert (config.target, changed.target) == ("localhost:1", "localhost:2")
    with pytest.raises(ValueError, match="port 0 is out of range"):
        dataclasses.replace(config, target="localhost:0")


def test_defaults() -> None:
    config = Config()
    assert config.keepalive_time == 300.0
    assert config.keepalive_timeout == 20.0
    assert config.max_receive_message_length == DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH == 256 << 20
    assert config.single_threaded_streams is True
    assert config.resolved_logger() is logging.getLogger("nvinformers.clientset")
    assert config.unary_interceptors == () and config.stream_interceptors == ()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("target", "", "gRPC target is empty"),
        ("target", "nohost", "has no port"),
        ("user_agent", "", "user_agent cannot be empty"),
        ("user_agent", "   ", "user_agent cannot be empty"),
        ("user_agent", "ua\n", "control characters"),
        ("keepalive_time", 0, "keepalive_time must be a positive"),
        ("keepalive_time", -1.0, "keepalive_time must be a positive"),
        ("keepalive_time", float("nan"), "keepalive_time must be a positive"),
        ("keepalive_timeout", float("inf"), "keepalive_timeout must be a positive"),
        ("keepalive_timeout", True, "keepalive_timeout must be a positive"),
        ("max_receive_message_length", 0, "max_receive_message_length"),
        ("max_receive_message_length", -2, "max_receive_message_length"),
        ("logger", "nvinformers", "logger must be a logging.Logger"),
        ("unary_interceptors", [object()], "must be tuples"),
        ("unary_interceptors", (object(),), "is not a grpc.UnaryUnaryClientInterceptor"),
        ("stream_interceptors", (object(),), "is not a grpc.UnaryStreamClientInterceptor"),
    ],
)
def test_invalid_fields_are_rejected_with_the_field_named(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**{field: value})  # type: ignore[arg-type]


def test_unlimited_receive_length_is_allowed() -> None:
    assert Config(max_receive_message_length=-1).max_receive_message_length == -1


def test_interceptors_of_the_right_kind_are_accepted() -> None:
    class Both(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
            return continuation(details, request)

        def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
            return continuation(details, request)

    both = Both()
    config = Config(unary_interceptors=(both,), stream_interceptors=(both,))
    assert config.unary_interceptors == (both,)


def test_user_agent_has_go_sdk_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    import nvinformers

    assert user_agent() == f"nvidia-device-api-client/{nvinformers.__version__} (linux/amd64)"
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert user_agent().endswith("(linux/arm64)")
    monkeypatch.setattr("platform.machine", lambda: "riscv64")
    assert user_agent().endswith("(linux/riscv64)")


def test_explicit_user_agent_is_used() -> None:
    assert Config(user_agent="my-agent/1.0").resolved_user_agent() == "my-agent/1.0"
    assert Config().resolved_user_agent() == user_agent()


def test_importing_config_does_not_import_grpc() -> None:
    code = (
        "import sys\n"
        "from nvinformers import Config\n"
        "from nvinformers.clientset import Config as C2, parse_target\n"
        "assert Config is C2\n"
        "Config(target='unix:///tmp/x.sock').resolved_target()\n"
        "heavy = ('grpc', 'prometheus_client')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

"""The command line's printers: kubectl's table and its AGE column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nvinformers._printers import human_duration, render_table
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"), (-1, "0s"), (45, "45s"), (119, "119s"), (200, "3m20s"), (240, "4m"),
        (700, "11m"), (3 * 3600 + 60, "3h1m"), (5 * 3600, "5h"), (20 * 3600, "20h"),
        (3 * 86400 + 4 * 3600, "3d4h"), (30 * 86400, "30d"), (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)  # fmt: skip
def test_ages_read_like_kubectls(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_the_tables_age_column_is_kubectls() -> None:
    msg = pb.Gpu()
    msg.object_meta.name = "gpu-0"
    # 3 days 4 hours ago: kubectl shows "3d4h" for the whole of that hour.
    msg.object_meta.creation_timestamp.FromDatetime(
        datetime.now(UTC) - timedelta(days=3, hours=4, minutes=30)
    )
    header, row = render_table([GPU.from_proto(msg)]).splitlines()
    assert header.split() == ["NAME", "UUID", "READY", "REASON", "AGE"]
    assert row.split() == ["gpu-0", "Unknown", "-", "3d4h"]

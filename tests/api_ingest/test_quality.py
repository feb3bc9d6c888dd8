"""The per-carrier data-quality summary over stored manifests (the broker side is in
tests/integration/test_carrier_quality.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api_ingest.quality import is_late, parse_since, summarize
from services.wire import manifest_pb2

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def _stored(mid: str, carrier: str, departs: datetime, received: datetime, travellers=2, warnings=()):
    m = manifest_pb2.Manifest(carrier=carrier, flight_number="1", manifest_id=mid)
    m.legs.add(origin="NAN", destination="SYD").scheduled_departure.CopyFrom(_ts(departs))
    m.received_at.CopyFrom(_ts(received))
    for _ in range(travellers):
        m.travellers.add(surname="X")
    for code, field, more in warnings:
        m.intake_warnings.add(code=code, field=field, more=more)
    return m


def test_late_means_received_after_the_first_departure():
    assert is_late(_stored("a", "FJ", NOW, NOW + timedelta(seconds=1)))
    assert not is_late(_stored("a", "FJ", NOW, NOW - timedelta(hours=2)))
    no_departure = _stored("a", "FJ", NOW, NOW + timedelta(hours=1))
    no_departure.legs[0].ClearField("scheduled_departure")
    assert not is_late(no_departure)


def test_summary_counts_manifests_travellers_late_ones_and_warnings_by_code_per_carrier():
    early, late = NOW - timedelta(hours=3), NOW + timedelta(minutes=5)
    stored = [
        _stored("m1", "FJ", NOW, early, 3, [("invalid_country", "travellers[0].nationality", 0)]),
        _stored("m2", "FJ", NOW, late, 2, [("truncated", "travellers[0].surname", 0), ("truncated", "", 70)]),
        _stored("m2", "FJ", NOW, late, 2, [("truncated", "travellers[0].surname", 0)]),  # stored twice: once
        _stored("m3", "nz", NOW, early, 5),
    ]
    fj, nz = summarize(stored)
    assert fj.as_json() == {
        "carrier": "FJ",
        "manifests": 2,
        "travellers": 5,
        "late": 1,
        "with_warnings": 2,
        "warnings": {"truncated": 71, "invalid_country": 1},
    }
    assert (nz.carrier, nz.manifests, nz.travellers, nz.late, dict(nz.warnings)) == ("NZ", 1, 5, 0, {})
    assert "truncated 71" in fj.lines()[1]
    [only_late] = summarize(stored, since=NOW)
    assert (only_late.carrier, only_late.manifests, only_late.late) == ("FJ", 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T09:30", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01T09:30+12:00", datetime(2026, 2, 28, 21, 30, tzinfo=UTC)),
    ],
)
def test_since_takes_an_age_or_a_utc_date(text, expected):
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "-3d", "2026-13-01"])
def test_since_refuses_anything_else_with_a_clear_message(text):
    with pytest.raises(ValueError, match="give an age"):
        parse_since(text, now=NOW)

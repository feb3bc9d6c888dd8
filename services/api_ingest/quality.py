"""Carriers' data quality, read back from the manifests topic (`apihub carriers quality`).

Intake stores every accepted manifest with its receipt's warnings as codes and fields (Manifest.intake_warnings)
and the time it arrived (received_at), so the summary survives restarts and needs nothing but Kafka: per carrier,
the manifests and travellers stored, the late ones (received after the first leg's scheduled departure) and the
warnings by code. Rejected manifests are not stored; the metrics page counts them (apihub_ingest_manifests,
apihub_ingest_violations{severity="error"}). No personal data is read out: codes, counts and carrier codes only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.bus import Topics, read_to_end
from services.codec import first_departure
from services.config import HubSettings
from services.wire import manifest_pb2

_AGE = re.compile(r"(\d+)([mhdw])")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass
class CarrierQuality:
    carrier: str
    manifests: int = 0
    travellers: int = 0
    # Manifests received after their first leg's scheduled departure.
    late: int = 0
    # Manifests with at least one warning.
    with_warnings: int = 0
    warnings: Counter[str] = field(default_factory=Counter)

    def add(self, m: manifest_pb2.Manifest) -> None:
        self.manifests += 1
        self.travellers += len(m.travellers)
        self.late += is_late(m)
        self.with_warnings += bool(m.intake_warnings)
        for w in m.intake_warnings:
            # A listed warning counts once; a line with an empty field stands for `more` unlisted ones.
            self.warnings[w.code] += w.more if not w.field and w.more else 1

    def as_json(self) -> dict:
        return {
            "carrier": self.carrier,
            "manifests": self.manifests,
            "travellers": self.travellers,
            "late": self.late,
            "with_warnings": self.with_warnings,
            "warnings": dict(sorted(self.warnings.items(), key=lambda kv: (-kv[1], kv[0]))),
        }

    def lines(self) -> list[str]:
        """The carrier's summary for a terminal."""
        total = sum(self.warnings.values())
        head = (
            f"{self.carrier:4} manifests {self.manifests:6,}  travellers {self.travellers:9,}  late {self.late:5,}  "
            f"warnings {total:7,} (on {self.with_warnings:,} manifests)"
        )
        kinds = ", ".join(f"{code} {n:,}" for code, n in self.as_json()["warnings"].items())
        return [head] + ([f"     {kinds}"] if kinds else [])


def is_late(m: manifest_pb2.Manifest) -> bool:
    """Received after the first leg's scheduled departure."""
    departure = first_departure(m)
    return departure is not None and m.HasField("received_at") and m.received_at.ToDatetime(tzinfo=UTC) > departure


def summarize(manifests: Iterable[manifest_pb2.Manifest], since: datetime | None = None) -> list[CarrierQuality]:
    """One row per carrier (sorted by code) over the manifests received since `since` (all when None); a manifest
    stored twice (at-least-once delivery) counts once."""
    rows: dict[str, CarrierQuality] = {}
    seen: set[str] = set()
    for m in manifests:
        if m.manifest_id in seen:
            continue
        seen.add(m.manifest_id)
        if since is not None and m.received_at.ToDatetime(tzinfo=UTC) < since:
            continue
        carrier = m.carrier.upper()
        rows.setdefault(carrier, CarrierQuality(carrier)).add(m)
    return [rows[c] for c in sorted(rows)]


def stored_manifests(settings: HubSettings, since: datetime | None = None) -> Iterator[manifest_pb2.Manifest]:
    """The manifests topic from its beginning to its current end. With `since`, records written before it are
    skipped unread (a record is written after its manifest's received_at)."""
    cutoff_ms = since.timestamp() * 1000 if since is not None else None
    for record in read_to_end(settings, Topics(settings.topic_prefix).manifests, "apihub-quality-reader"):
        if cutoff_ms is not None and 0 <= record.timestamp < cutoff_ms:
            continue
        yield manifest_pb2.Manifest.FromString(record.value)


def read_quality(settings: HubSettings, since: datetime | None = None) -> list[CarrierQuality]:
    return summarize(stored_manifests(settings, since), since)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An age ("90m", "24h", "7d", "2w": that long before now) or an ISO 8601 date or date-time (UTC unless it
    says otherwise). Raises ValueError saying what is accepted."""
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age:
        return (now or datetime.now(UTC)) - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text[:40]!r}: give an age (90m, 24h, 7d, 2w) or a UTC date or time (2026-03-10, "
            "2026-03-10T09:00)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)

"""The fault suite's results: one row per scenario, printed as a table and written as JSON and Markdown beside the
benchmarks' results (benchmarks/results/chaos-<time>.json and .md). Rows hold ids and counts, never a traveller."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# What fails the suite in a row, with a hub that did not recover; every other column is reported only.
FAILING = ("lost", "shown_twice", "leaked")
# Examples of each failure kept in a row (hit ids and members only).
SAMPLES = 10


@dataclass
class Row:
    scenario: str
    about: str
    fault: str
    accepted: int  # manifests with a receipt (accepted, or duplicate for a retry of a stored one)
    duplicates: int  # of those, retries answered duplicate
    unconfirmed: int  # no receipt before the suite gave up (their hits are neither expected nor counted missing)
    refused: int  # refused for another reason than the hub being down (rejected, failed)
    expected: int
    delivered: int
    lost: int
    shown_twice: int
    leaked: int
    extra: int  # shown to an entitled member without a receipt announcing it (reported, not a failure)
    redelivered: int  # repeats at the webhook, dropped by the member's (hit id, version) de-duplication
    next_hit_s: float | None
    worst_wait_s: float | None
    tool_restarts: int  # times the member's `hits follow` exited by itself and was started again
    # The hub came back: a hit raised after the fault was shown (counting.recovered); a scenario fails without.
    recovered: bool = True
    service_exits: list[str] = field(default_factory=list)  # services that exited by themselves (restarted)
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.recovered and not any(getattr(self, name) for name in FAILING)


_COLUMNS = (
    ("scenario", 16),
    ("accepted", 8),
    ("expected", 8),
    ("delivered", 9),
    ("lost", 5),
    ("twice", 5),
    ("leaked", 6),
    ("next hit", 8),
    ("worst wait", 10),
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _cells(row: Row) -> list[str]:
    return [
        row.scenario,
        str(row.accepted),
        str(row.expected),
        str(row.delivered),
        str(row.lost),
        str(row.shown_twice),
        str(row.leaked),
        _seconds(row.next_hit_s),
        _seconds(row.worst_wait_s),
    ]


def table(rows: list[Row]) -> list[str]:
    """The text table the suite prints, with a line of notes under each row that has any."""
    lines = ["  ".join(f"{name:>{width}}" if i else f"{name:<{width}}" for i, (name, width) in enumerate(_COLUMNS))]
    for row in rows:
        cells = _cells(row)
        mark = "" if row.ok else "  FAILED"
        lines.append(
            "  ".join(
                f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
            + mark
        )
        notes = _notes(row)
        if notes:
            lines.append("    " + "; ".join(notes))
    return lines


def _notes(row: Row) -> list[str]:
    notes = [] if row.recovered else ["DID NOT RECOVER: no hit raised after the fault was shown"]
    for what, count in (
        ("receipts answered duplicate", row.duplicates),
        ("manifests without a receipt", row.unconfirmed),
        ("manifests refused", row.refused),
        ("unannounced hits", row.extra),
        ("webhook redeliveries (de-duplicated)", row.redelivered),
        ("`hits follow` restarts", row.tool_restarts),
    ):
        if count:
            notes.append(f"{count} {what}")
    if row.service_exits:
        notes.append("exited by themselves: " + ", ".join(row.service_exits))
    return notes


def markdown(rows: list[Row], mode: str, seconds: float, command: str, tools: dict[str, int] | None = None) -> str:
    head = "| " + " | ".join(name for name, _ in _COLUMNS) + " | notes |"
    lines = [
        f"# Fault suite ({mode}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{command}`: {'passed' if all(r.ok for r in rows) else 'FAILED'} in {seconds:.0f}s.",
        "",
        head,
        "|" + "---|" * (len(_COLUMNS) + 1),
    ]
    for row in rows:
        notes = "; ".join([row.fault + ("" if row.ok else " **FAILED**"), *_notes(row)])
        lines.append("| " + " | ".join(_cells(row)) + f" | {notes} |")
    for row in rows:
        for what, samples in row.samples.items():
            if samples:
                lines.append(f"\n{row.scenario}, {what.replace('_', ' ')}: {', '.join(samples)}")
    if tools:
        lines.append(
            "\nMembers' tools, over the run: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(tools.items()))
        )
    lines += [
        "",
        "accepted: manifests with a receipt (amendments and withdrawals included). expected: hit versions (first, "
        "amended, withdrawn) owed to members for those, one per member with jurisdiction over the flight. lost: "
        "expected and never shown. twice: the same (hit id, version) shown again by a member's tool. leaked: "
        "shown to a member without jurisdiction. next hit: from the fault (or the member's return) to the next hit "
        "shown that a manifest acknowledged after it raised (for a member's fault: the member's next hit). worst "
        "wait: the longest any hit, or any carrier's receipt, waited because of the fault.",
    ]
    return "\n".join(lines) + "\n"


def write(
    rows: list[Row], out: Path, mode: str, seconds: float, command: str, tools: dict[str, int] | None = None
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    data = {
        "mode": mode,
        "command": command,
        "seconds": round(seconds, 1),
        "ok": all(r.ok for r in rows),
        "totals": {name: sum(getattr(r, name) for r in rows) for name in (*FAILING, "expected", "delivered")},
        "scenarios": [{**asdict(r), "ok": r.ok} for r in rows],
        # The members' tools' own counts over the run (services.follow.FollowStats, summed).
        "tools": tools or {},
    }
    json_path, md_path = out / f"chaos-{stamp}.json", out / f"chaos-{stamp}.md"
    json_path.write_text(json.dumps(data, indent=2))
    md_path.write_text(markdown(rows, mode, seconds, command, tools))
    return json_path, md_path

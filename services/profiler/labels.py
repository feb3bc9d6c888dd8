"""Members' dispositions as labels for the risk model: one feature row per disposed hit.

Members record what their profiling unit found for a hit they received (`apihub hits dispose`, the
dispositions topic). This module turns those outcomes into labelled rows that services.profiler.training.train
can use beside the synthetic history.

From dispositions to a label per hit
* Only a member's latest disposition of a hit counts (by its time; a tie goes to the one read last), as in
  services.dispositions: a revised outcome replaces the first one.
* Outcomes: true_match, denied_boarding, refused_entry and secondary_positive label the traveller "of
  interest" (1); false_positive and secondary_negative "not of interest" (0); anything else is no label.
* Members that disagree (a hit goes to every member with jurisdiction over the flight): ANY POSITIVE WINS.
  The label means "a human review of this traveller was warranted" (synthetic.history); one member's
  concrete finding (refused entry, a confirmed match) shows that it was, and members that found nothing at
  their own border do not outvote it. Such hits are counted as conflicting, and each row says how many
  members disposed it and whether they disagreed.

From a hit to its features (no train/serve skew)
* A hit id is one per traveller and flight (codec.hit_id). The hits topic holds each version the profiler
  raised; the version used is the last one raised at or before the disposition that decided the label (the
  one the member had in front of them), else the first.
* That version names the manifest it was scored on (manifest_id); the manifest is read back from the
  manifests topic and its travellers get exactly the profiler's features (frames.manifests_to_frame and
  frames.add_features over the whole manifest, so party sizes count the same co-travellers). The traveller
  is the one whose codec.traveller_key gives the hit id.
* A disposed hit whose hit record, manifest or traveller cannot be found (retention, a foreign topic) is
  skipped and counted, never guessed.

A row holds the hit id, the decisive outcome, the number of members, whether they disagreed, the sources
that raised the hit ("rule+watchlist"), the add_features columns the model reads (model.FEATURE_COLUMNS),
the label `of_interest` and the feature schema version it was computed under. Never names, birth dates,
document numbers or nationalities: the export files (`apihub model labels`) hold nothing else.

Selection bias: only hits get dispositions, so these rows are travellers a rule, watchlist entry or the
model already flagged, not a sample of all travellers; training.train weights them and keeps the synthetic
history beside them.

The pure functions (hit_labels, choose_versions, label_rows, build_labels) need no broker; read_labels reads
the three topics with the bus's TableReader, keeping only the records the disposed hits need.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
from google.protobuf.message import DecodeError

from services import codec
from services.dispositions import NEGATIVE, OUTCOME_NAMES, POSITIVE, latest_per_member
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.model import FEATURE_COLUMNS, FEATURE_SCHEMA_VERSION
from services.wire import delivery_pb2, hit_pb2, manifest_pb2

OUTCOME_LABELS: dict[int, bool] = {**dict.fromkeys(POSITIVE, True), **dict.fromkeys(NEGATIVE, False)}
COMBINATION_RULE = (
    "latest outcome per member and hit; true_match, denied_boarding, refused_entry, secondary_positive -> 1, "
    "false_positive, secondary_negative -> 0; members disagreeing: any positive wins"
)

# Columns of a labels frame (and of the files `apihub model labels` writes), in order.
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "hit_id": pl.String(),
    "outcome": pl.String(),  # the decisive member's outcome, e.g. "true_match"
    "members": pl.Int32(),  # members whose latest disposition gave a label
    "conflicting": pl.Boolean(),  # members disagreed (any positive won)
    "sources": pl.String(),  # what raised the hit: "model", "rule+watchlist", ...
    **FEATURE_COLUMNS,
    "of_interest": pl.Boolean(),
    "feature_schema_version": pl.Int32(),
}

_SOURCE_NAMES = {
    hit_pb2.REASON_SOURCE_RULE: "rule",
    hit_pb2.REASON_SOURCE_WATCHLIST: "watchlist",
    hit_pb2.REASON_SOURCE_MODEL: "model",
}


@dataclass
class LabelReport:
    """Counts of one labelling run (counts only: fit for logs, output and model metadata)."""

    dispositions: int = 0  # disposition records read
    superseded: int = 0  # replaced by a later disposition of the same member and hit
    unlabelled: int = 0  # latest outcome gives no label (unspecified or unknown)
    disposed_hits: int = 0  # hits with at least one labelling disposition
    conflicting: int = 0  # of those, hits on which members disagreed
    hit_missing: int = 0  # skipped: no record of the hit on the hits topic
    manifest_missing: int = 0  # skipped: the hit's manifest is not on the manifests topic
    traveller_missing: int = 0  # skipped: the manifest has no traveller with the hit's id
    undecodable: int = 0  # records of the three topics that could not be decoded
    labels: int = 0  # rows produced
    positives: int = 0  # rows labelled of interest

    @property
    def skipped(self) -> int:
        return self.hit_missing + self.manifest_missing + self.traveller_missing

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Labels:
    frame: pl.DataFrame  # LABEL_SCHEMA
    report: LabelReport


@dataclass(frozen=True)
class HitLabel:
    """The label of one disposed hit, from the latest disposition of every member that disposed it."""

    hit_id: str
    of_interest: bool
    outcome: int  # the decisive disposition's outcome
    at: tuple[int, int]  # the decisive disposition's time (seconds, nanos)
    positive_members: int
    negative_members: int

    @property
    def members(self) -> int:
        return self.positive_members + self.negative_members

    @property
    def conflicting(self) -> bool:
        return self.positive_members > 0 and self.negative_members > 0


def outcome_label(outcome: int) -> bool | None:
    """True (of interest), False (not), or None: the outcome gives no label."""
    return OUTCOME_LABELS.get(outcome)


def _time(stamp) -> tuple[int, int]:
    return (stamp.seconds, stamp.nanos)


def combine(member_latest: Sequence[delivery_pb2.Disposition]) -> HitLabel | None:
    """One hit's label from its members' latest dispositions: any positive wins; None if none gives a label.

    The decisive disposition is the latest one that agrees with the label.
    """
    positives = [d for d in member_latest if outcome_label(d.outcome) is True]
    negatives = [d for d in member_latest if outcome_label(d.outcome) is False]
    if not positives and not negatives:
        return None
    agreeing = positives or negatives
    decisive = agreeing[0]
    for d in agreeing[1:]:
        if _time(d.at) >= _time(decisive.at):
            decisive = d
    return HitLabel(
        hit_id=decisive.hit_id,
        of_interest=bool(positives),
        outcome=decisive.outcome,
        at=_time(decisive.at),
        positive_members=len(positives),
        negative_members=len(negatives),
    )


def hit_labels(
    dispositions: Iterable[delivery_pb2.Disposition], report: LabelReport | None = None
) -> dict[str, HitLabel]:
    """hit id -> its label, from every disposition read (see the module docstring for the rules)."""
    report = report if report is not None else LabelReport()
    read = list(dispositions)
    report.dispositions += len(read)
    latest = latest_per_member(read)
    report.superseded += len(read) - len(latest)
    by_hit: dict[str, list[delivery_pb2.Disposition]] = {}
    for d in latest.values():
        if outcome_label(d.outcome) is None:
            report.unlabelled += 1
        by_hit.setdefault(d.hit_id, []).append(d)
    labels = {}
    for hit_id, members in by_hit.items():
        label = combine(members)
        if label is not None:
            labels[hit_id] = label
            report.conflicting += label.conflicting
    report.disposed_hits += len(labels)
    return labels


def is_hit_version(hit: hit_pb2.Hit) -> bool:
    """A hit as raised (not a clearance record, which has no hit id, nor a withdrawal)."""
    return bool(hit.hit_id) and hit.state != hit_pb2.HIT_STATE_WITHDRAWN


def disposed_version(versions: Sequence[hit_pb2.Hit], at: tuple[int, int]) -> hit_pb2.Hit:
    """The version of a hit a member decided on at time `at`: the last raised at or before it (the later one
    read wins a tie), else the first raised (clocks of two services may disagree by a little)."""
    chosen = None
    for hit in versions:
        if _time(hit.raised_at) <= at and (chosen is None or _time(hit.raised_at) >= _time(chosen.raised_at)):
            chosen = hit
    if chosen is None:
        for hit in versions:
            if chosen is None or _time(hit.raised_at) < _time(chosen.raised_at):
                chosen = hit
    return chosen


def choose_versions(labels: Mapping[str, HitLabel], hits: Iterable[hit_pb2.Hit]) -> dict[str, hit_pb2.Hit]:
    """hit id -> disposed_version of each labelled hit at its decisive disposition. Hits not labelled (and
    clearance records) are ignored, so `hits` may be a whole topic."""
    versions: dict[str, list[hit_pb2.Hit]] = {}
    for hit in hits:
        if hit.hit_id in labels and is_hit_version(hit):
            versions.setdefault(hit.hit_id, []).append(hit)
    return {hit_id: disposed_version(found, labels[hit_id].at) for hit_id, found in versions.items()}


def traveller_index(manifest: manifest_pb2.Manifest, hit: hit_pb2.Hit) -> int | None:
    """Position in the manifest of the traveller the hit is about: the one whose key gives the hit id (the
    one equal to the hit's copy if several do), or None."""
    flight = codec.flight_key(manifest)
    found = [i for i, t in enumerate(manifest.travellers) if codec.hit_id(flight, codec.traveller_key(t)) == hit.hit_id]
    for i in found:
        if manifest.travellers[i] == hit.traveller:
            return i
    return found[0] if found else None


def _sources(hit: hit_pb2.Hit) -> str:
    return "+".join(sorted({_SOURCE_NAMES.get(r.source, "unspecified") for r in hit.reasons}))


def empty_labels() -> pl.DataFrame:
    return pl.DataFrame(schema=LABEL_SCHEMA)


def label_rows(
    labels: Mapping[str, HitLabel],
    hits: Mapping[str, hit_pb2.Hit],
    manifests: Mapping[str, manifest_pb2.Manifest],
    report: LabelReport | None = None,
) -> pl.DataFrame:
    """One LABEL_SCHEMA row per labelled hit whose hit version, manifest and traveller are found (sorted by hit
    id); the others are counted in the report as skipped. Features come from the profiler's own code over
    each whole manifest."""
    report = report if report is not None else LabelReport()
    batch: list[manifest_pb2.Manifest] = []
    position: dict[str, int] = {}
    wanted: dict[str, list] = {
        "manifest_index": [],
        "traveller_index": [],
        **{name: [] for name in ("hit_id", "outcome", "members")},
    }
    wanted |= {"conflicting": [], "sources": [], "of_interest": []}
    for hit_id in sorted(labels):
        label = labels[hit_id]
        hit = hits.get(hit_id)
        if hit is None:
            report.hit_missing += 1
            continue
        manifest = manifests.get(hit.manifest_id)
        if manifest is None:
            report.manifest_missing += 1
            continue
        t = traveller_index(manifest, hit)
        if t is None:
            report.traveller_missing += 1
            continue
        if hit.manifest_id not in position:
            position[hit.manifest_id] = len(batch)
            batch.append(manifest)
        wanted["manifest_index"].append(position[hit.manifest_id])
        wanted["traveller_index"].append(t)
        wanted["hit_id"].append(hit_id)
        wanted["outcome"].append(OUTCOME_NAMES.get(label.outcome, str(label.outcome)))
        wanted["members"].append(label.members)
        wanted["conflicting"].append(label.conflicting)
        wanted["sources"].append(_sources(hit))
        wanted["of_interest"].append(label.of_interest)
    if not batch:
        return empty_labels()
    rows = pl.DataFrame(
        wanted,
        schema={
            "manifest_index": pl.Int64(),
            "traveller_index": pl.Int64(),
            "hit_id": pl.String(),
            "outcome": pl.String(),
            "members": pl.Int32(),
            "conflicting": pl.Boolean(),
            "sources": pl.String(),
            "of_interest": pl.Boolean(),
        },
    )
    features = add_features(manifests_to_frame(batch), batch).select(
        "manifest_index", "traveller_index", *FEATURE_COLUMNS
    )
    frame = rows.join(
        features, on=["manifest_index", "traveller_index"], how="left", maintain_order="left"
    ).with_columns(feature_schema_version=pl.lit(FEATURE_SCHEMA_VERSION, dtype=pl.Int32()))
    frame = frame.select(pl.col(name).cast(dtype) for name, dtype in LABEL_SCHEMA.items())
    report.labels += frame.height
    report.positives += int(frame["of_interest"].sum())
    return frame


def build_labels(
    dispositions: Iterable[delivery_pb2.Disposition],
    hits: Iterable[hit_pb2.Hit],
    manifests: Iterable[manifest_pb2.Manifest],
) -> Labels:
    """Labelled feature rows from the three topics' records (consumed in that order; hits and manifests only
    as far as the disposed hits need them)."""
    report = LabelReport()
    labels = hit_labels(dispositions, report)
    chosen = choose_versions(labels, hits)
    needed = {hit.manifest_id for hit in chosen.values()}
    found = {m.manifest_id: m for m in manifests if m.manifest_id in needed}
    return Labels(label_rows(labels, chosen, found, report), report)


# -- reading the hub's topics ---------------------------------------------------------------------------------

# Reading a topic to its end may take a while on a large manifests topic; beyond this, the reader gives up.
READ_TIMEOUT_S = 600.0


def _read_topic(settings, topic: str, message, keep: Callable[[object], bool], report: LabelReport, timeout_s: float):
    """The decoded records of a whole topic (from the beginning to its end now) that `keep` accepts."""
    from services.bus import TableReader

    kept: list = []

    def apply(key: bytes | None, value: bytes | None, record) -> None:
        if not value:
            return
        try:
            decoded = message.FromString(value)
        except DecodeError:
            report.undecodable += 1
            return
        if keep(decoded):
            kept.append(decoded)

    reader = TableReader(settings, topic, apply, "apihub-model-labels")
    try:
        reader.catch_up(timeout_s)
    finally:
        reader.close()
    return kept


def read_labels(settings, timeout_s: float = READ_TIMEOUT_S) -> Labels:
    """build_labels over the hub's dispositions, hits and manifests topics (settings: HubSettings).

    Each topic is read from its beginning to its current end with no consumer group (nothing committed);
    only the disposed hits' versions and their manifests are kept in memory. Raises ConfigError when a topic
    does not exist and KafkaError when the broker cannot be read.
    """
    from services.bus import Topics

    topics = Topics(settings.topic_prefix)
    report = LabelReport()
    dispositions = _read_topic(
        settings, topics.dispositions, delivery_pb2.Disposition, lambda _: True, report, timeout_s
    )
    labels = hit_labels(dispositions, report)
    if not labels:
        return Labels(empty_labels(), report)
    versions = _read_topic(
        settings, topics.hits, hit_pb2.Hit, lambda h: h.hit_id in labels and is_hit_version(h), report, timeout_s
    )
    chosen = choose_versions(labels, versions)
    needed: Container[str] = {hit.manifest_id for hit in chosen.values()}
    manifests = _read_topic(
        settings, topics.manifests, manifest_pb2.Manifest, lambda m: m.manifest_id in needed, report, timeout_s
    )
    frame = label_rows(labels, chosen, {m.manifest_id: m for m in manifests}, report)
    return Labels(frame, report)


# -- label files (offline training) ---------------------------------------------------------------------------


class LabelFileError(ValueError):
    """A labels file that cannot be used: unreadable, missing columns, or computed under other features."""


FORMATS = (".parquet", ".csv")


def label_file_format(path: Path) -> str:
    """ ".parquet" or ".csv", from the file's suffix; LabelFileError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise LabelFileError(f"{path}: name it .parquet or .csv (the format follows the suffix)")
    return suffix


def write_labels_file(frame: pl.DataFrame, path: Path) -> Path:
    """Write LABEL_SCHEMA columns (and nothing else) as Parquet or CSV, by the file's suffix."""
    path = Path(path)
    suffix = label_file_format(path)
    rows = frame.select(pl.col(name).cast(dtype) for name, dtype in LABEL_SCHEMA.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        rows.write_parquet(path)
    else:
        rows.write_csv(path)
    return path


def read_labels_file(path: Path) -> pl.DataFrame:
    """A labels file written by write_labels_file (or by hand in its format), as a LABEL_SCHEMA frame.

    Columns beyond LABEL_SCHEMA are dropped; refused: missing columns, a missing label, and rows computed
    under another feature schema version than this code's.
    """
    path = Path(path)
    suffix = label_file_format(path)
    try:
        if suffix == ".parquet":
            raw = pl.read_parquet(path)
        else:
            header = pl.read_csv(path, n_rows=0).columns
            raw = pl.read_csv(path, schema_overrides={c: t for c, t in LABEL_SCHEMA.items() if c in header})
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LabelFileError(f"{path}: not readable as {suffix[1:]} ({type(exc).__name__}: {exc})") from None
    missing = [c for c in LABEL_SCHEMA if c not in raw.columns]
    if missing:
        raise LabelFileError(f"{path}: missing columns {missing}")
    try:
        frame = raw.select(pl.col(name).cast(dtype) for name, dtype in LABEL_SCHEMA.items())
    except pl.exceptions.PolarsError as exc:
        raise LabelFileError(f"{path}: a column has the wrong type ({type(exc).__name__})") from None
    if frame["of_interest"].null_count():
        raise LabelFileError(f"{path}: {frame['of_interest'].null_count()} rows have no of_interest label")
    versions = set(frame["feature_schema_version"].unique().to_list())
    if versions - {FEATURE_SCHEMA_VERSION}:
        raise LabelFileError(
            f"{path}: rows computed under feature schema version(s) {sorted(versions, key=str)}, this code computes "
            f"version {FEATURE_SCHEMA_VERSION}; export the labels again (`apihub model labels`)"
        )
    return frame

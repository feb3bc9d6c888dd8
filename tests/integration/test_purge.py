"""`apihub purge` on the real broker: traffic through a whole hub, a purge, and the purged travellers are gone from
every topic the hub owns while a later manifest, its hits and the members' cursors carry on."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from hubkit import flight, plant
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import TopicPartition
from typer.testing import CliRunner

from services import client
from services.bus import DAY_MS, Topics, ensure_topics, make_admin, make_consumer, make_producer, topic_specs
from services.cli import app
from services.directory import load_directory
from services.profiler.labels import read_labels
from services.purge import Purge, TopicPurge, _tombstone_stale, purge
from services.wire import delivery_pb2, intake_pb2
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

OLD_NOTE, NEW_NOTE = "OLD-NOTE-7Q2", "NEW-NOTE-4K9"


def _read_all(settings, topic: str) -> list:
    """Every record of a topic from its log start to its end now (no group)."""
    consumer = make_consumer(settings, None, "test-purge-reader")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records += [r for r in batch if r.offset < end[tp]]
        assert all(consumer.position(tp) >= end[tp] for tp in tps), f"{topic} was not read to its end"
        return records
    finally:
        consumer.close()


def _text(record) -> str:
    """Key and value as text, for searching names and document numbers (protobuf keeps strings as UTF-8)."""
    return ((record.key or b"") + b" " + (record.value or b"")).decode("utf-8", "ignore").casefold()


def _identifiers(people) -> set[str]:
    """Document numbers and name parts (of at least 4 letters, so that they do not turn up by chance inside other
    text) of travellers or watchlist entries, as searched for in records."""
    found = set()
    for p in people:
        numbers = [d.number for d in p.documents] if hasattr(p, "documents") else [p.document_number]
        names = [*p.surname.split(), *p.given_names.split()]
        found |= {x.casefold() for x in numbers if x} | {x.casefold() for x in names if len(x) >= 4}
    return found


def _mentions(record, identifiers) -> set[str]:
    text = _text(record)
    return {x for x in identifiers if x in text}


def _mentions_text(text: str, identifiers) -> set[str]:
    return {x for x in identifiers if x in text.casefold()}


def _run(settings, *args, env=None):
    env = {
        "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
        **(env or {}),
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_purge_removes_older_travellers_from_every_topic_and_the_hub_carries_on(hub, settings):
    t = Topics(settings.topic_prefix)
    entries = demo_watchlists()["FJI"][:2]
    hub.load("FJI", entries)
    chan = client.channel(hub.delivery_addr)

    # Before the purge date: a flight to Samoa with a listed traveller. Fiji receives, acknowledges and disposes
    # the hit (with a note); Samoa never connects; the hit also ends among the dead letters.
    old = flight(["NAN", "APW"], number="801", seed=31)
    plant(old, entries[0], "FJ801-L1")
    [receipt_old] = hub.submit(old)
    assert receipt_old.status == intake_pb2.RECEIPT_STATUS_ACCEPTED, receipt_old
    [hit_old] = hub.hits("FJI", want=1, idle=20)
    assert hit_old.traveller.passenger_ref == "FJ801-L1"
    disposed_old = client.dispose(
        chan, hub.token("member", "FJI"), "FJI", hit_old.hit_id, delivery_pb2.OUTCOME_TRUE_MATCH, OLD_NOTE
    ).disposition
    producer = make_producer(settings, "test-dead-letter")
    producer.send(
        t.dead_letters, key=hit_old.hit_id.encode(), value=hit_old.SerializeToString(), headers=[("member", b"WSM")]
    ).get(timeout=30)
    producer.close()

    time.sleep(0.05)  # a millisecond clock: keep the records of both sides of the date apart
    cutoff = datetime.now(UTC)
    cutoff_ms = int(cutoff.timestamp() * 1000)
    time.sleep(0.05)

    # After it: another flight, whose hit Fiji receives and disposes too.
    new = flight(["NAN", "APW"], number="802", seed=32)
    plant(new, entries[1], "FJ802-L1")
    [receipt_new] = hub.submit(new)
    assert receipt_new.status == intake_pb2.RECEIPT_STATUS_ACCEPTED, receipt_new
    [hit_new] = hub.hits("FJI", want=1, idle=20)
    assert hit_new.traveller.passenger_ref == "FJ802-L1"
    client.dispose(
        chan, hub.token("member", "FJI"), "FJI", hit_new.hit_id, delivery_pb2.OUTCOME_FALSE_POSITIVE, NEW_NOTE
    )

    specs = topic_specs(settings, load_directory().codes)
    everything = {name: _read_all(settings, name) for name in specs}
    dry = _run(settings, "purge", "--before", cutoff.isoformat(), "--dry-run")
    assert f"{t.raw}: would delete 1 records" in dry
    assert f"{t.intake_index}: would delete" in dry and f"{t.watchlists}: kept" in dry
    assert {name: len(_read_all(settings, name)) for name in specs} == {n: len(r) for n, r in everything.items()}

    said = _run(settings, "purge", "--before", cutoff.isoformat())
    assert f"{t.raw}: deleted 1 records" in said
    assert f"{t.dead_letters}: deleted 1 records" in said
    assert re.search(rf"{re.escape(t.deliveries)}: deleted [1-9][0-9]* records, wrote 1 tombstones", said), said
    assert f"{t.dispositions}: deleted 1 records after re-publishing 1 without their note and 0 unchanged" in said
    assert "WSM: never acknowledged is below the new log start 1: resumes there (1 unacknowledged hits purged)" in said
    assert "Model labels: 1 dispositions are older than" in said and "no longer available for the next training" in said
    # Nothing personal in what the purge says.
    assert not _mentions_text(said, _identifiers([*old.travellers, *new.travellers]))

    # The purged travellers are on no topic the hub owns, but the member's own watchlist entry stays on the
    # watchlists topic (configuration, not a traveller record). What the later flight or the other watchlist entry
    # also hold (a common name) is no evidence either way.
    listed = _identifiers([entries[0]])
    elsewhere = " ".join(_identifiers([*new.travellers, entries[1]]))
    gone = {x for x in _identifiers(old.travellers) if x not in elsewhere}
    assert entries[0].document_number.casefold() in gone and len(gone - listed) >= 5
    after = {name: _read_all(settings, name) for name in specs}
    for name, records in after.items():
        for record in records:
            found = _mentions(record, gone) - (listed if name == t.watchlists else set())
            assert not found, f"{name}@{record.offset} still holds a purged traveller"
            assert OLD_NOTE.casefold() not in _text(record), f"{name}@{record.offset} still holds the purged note"
    assert any(_mentions(r, listed) for r in after[t.watchlists])

    # Every record left on the delete-policy topics was written after the date.
    for name in (t.raw, t.manifests, t.hits, t.dead_letters, t.audit, t.outbox("FJI"), t.outbox("WSM")):
        assert all(r.timestamp >= cutoff_ms for r in after[name]), name
    # The later manifest, its hit and its disposition (note included) are all still there.
    new_doc = new.travellers[-1].documents[0].number.casefold()
    for name in (t.raw, t.manifests, t.hits, t.outbox("FJI"), t.outbox("WSM")):
        assert any(new_doc in _text(r) for r in after[name]), name
    assert any(NEW_NOTE.casefold() in _text(r) for r in after[t.dispositions])

    # Tables: tombstones for the purged keys, so every process's in-memory table forgets them; no value left.
    deliveries = [r for r in after[t.deliveries] if r.key == hit_old.hit_id.encode()]
    assert deliveries and all(r.value is None for r in deliveries)
    assert any(r.key == hit_new.hit_id.encode() and r.value for r in after[t.deliveries])
    index = after[t.intake_index]
    assert sum(r.value is None for r in index) >= 1
    assert not any(r.value == receipt_old.manifest_id.encode() for r in index)
    assert any(r.value == receipt_new.manifest_id.encode() for r in index)

    # The purged disposition's outcome stays, without its note, with its own time.
    [kept] = [
        delivery_pb2.Disposition.FromString(r.value) for r in after[t.dispositions] if r.key == hit_old.hit_id.encode()
    ]
    assert (kept.outcome, kept.note, kept.member) == (delivery_pb2.OUTCOME_TRUE_MATCH, "", "FJI")
    assert kept.at == disposed_old.at

    # Labels for the next training: the purged disposition's hit is gone, so it no longer makes a label.
    labels = read_labels(settings)
    assert (labels.report.dispositions, labels.report.hit_missing, labels.report.labels) == (2, 1, 1)

    # The hub carries on: Samoa, whose cursor was before the purge point, now starts at the log start.
    assert [h.hit_id for h in hub.hits("WSM", want=1, idle=20)] == [hit_new.hit_id]


def test_compaction_removes_a_tombstoned_value_that_the_cut_could_not_reach(settings):
    """A table record stamped before the date but written after newer ones (a producer's clock behind) lies above
    the cut: its tombstone hides it from every table at once, and compaction removes the value itself."""
    ensure_topics(settings, [])
    t = Topics(settings.topic_prefix)
    fast = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
    admin = make_admin(settings, "test-purge-compaction")
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t.deliveries, fast)], raise_on_unknown=False)
    finally:
        admin.close()
    producer = make_producer(settings, "test-purge-compaction")
    now_ms = int(time.time() * 1000)
    producer.send(t.deliveries, key=b"current", value=b"CURRENT-VALUE", partition=0).get(timeout=30)
    producer.send(t.deliveries, key=b"stale", value=b"STALE-VALUE", partition=0, timestamp_ms=now_ms - DAY_MS).get(
        timeout=30
    )

    before = datetime.fromtimestamp((now_ms - 3_600_000) / 1000, UTC)
    [table] = [r for r in purge(settings, [], before, say=lambda _: None) if r.topic == t.deliveries]
    assert (table.tombstones, table.deleted) == (1, 0)  # the current record (first after the date) keeps the cut
    assert [(r.key, r.value) for r in _read_all(settings, t.deliveries)] == [
        (b"current", b"CURRENT-VALUE"),
        (b"stale", b"STALE-VALUE"),
        (b"stale", None),
    ]

    # The broker compacts segments that have rolled: keep writing so that they roll, until the cleaner has run
    # (log.cleaner.backoff.ms, 15 s by default, between its rounds).
    deadline = time.monotonic() + 120
    while any(r.value == b"STALE-VALUE" for r in _read_all(settings, t.deliveries)):
        assert time.monotonic() < deadline, "the broker did not compact the table within 120 s"
        time.sleep(1)
        producer.send(t.deliveries, key=b"roll", value=b"-", partition=0).get(timeout=30)
    producer.close()
    left = [(r.key, r.value) for r in _read_all(settings, t.deliveries) if r.key != b"roll"]
    assert left == [(b"current", b"CURRENT-VALUE"), (b"stale", None)]


def test_expired_notes_strips_only_the_notes_past_their_retention(settings):
    """The daily `apihub purge --expired-notes`: dispositions older than the notes' retention lose their note and
    keep their outcome; newer notes, and every other topic, are left alone."""
    ensure_topics(settings, [])
    t = Topics(settings.topic_prefix)
    now_ms = int(time.time() * 1000)

    def disposition(hit_id: str, note: str) -> bytes:
        d = delivery_pb2.Disposition(hit_id=hit_id, member="FJI", outcome=delivery_pb2.OUTCOME_TRUE_MATCH, note=note)
        return d.SerializeToString()

    producer = make_producer(settings, "test-expired-notes")
    three_days_ago = now_ms - 3 * DAY_MS
    for topic, key, value, stamp in [
        (t.dispositions, b"H-OLD", disposition("H-OLD", OLD_NOTE), three_days_ago),
        (t.dispositions, b"H-NEW", disposition("H-NEW", NEW_NOTE), now_ms),
        (t.raw, b"M-OLD", b"raw bytes as received", three_days_ago),
    ]:
        producer.send(topic, key=key, value=value, timestamp_ms=stamp).get(timeout=30)
    producer.close()

    env = {"APIHUB_DISPOSITION_NOTE_RETENTION_DAYS": "2"}
    said = _run(settings, "purge", "--expired-notes", env=env)
    assert f"{t.dispositions}: deleted 1 records after re-publishing 1 without their note and 0 unchanged" in said
    assert t.raw not in said
    left = {r.key: delivery_pb2.Disposition.FromString(r.value) for r in _read_all(settings, t.dispositions)}
    assert (left[b"H-OLD"].note, left[b"H-OLD"].outcome) == ("", delivery_pb2.OUTCOME_TRUE_MATCH)
    assert left[b"H-NEW"].note == NEW_NOTE
    assert [r.key for r in _read_all(settings, t.raw)] == [b"M-OLD"]
    # Run again: nothing left to strip.
    again = _run(settings, "purge", "--expired-notes", env=env)
    assert f"{t.dispositions}: deleted 0 records" in again


def test_a_table_key_written_again_during_the_purge_keeps_its_new_value(settings):
    """The purge reads a table up to an end, then writes tombstones: a value a live process wrote for the same key
    in between must not be undone by the tombstone (it is re-published after it)."""
    ensure_topics(settings, [])
    t = Topics(settings.topic_prefix)
    tp = TopicPartition(t.intake_index, 0)
    now_ms = int(time.time() * 1000)
    producer = make_producer(settings, "test-purge-race")
    producer.send(tp.topic, key=b"k", value=b"old", partition=0, timestamp_ms=now_ms - DAY_MS).get(timeout=30)
    read_up_to = 1  # what the purge had read when the process below wrote again
    producer.send(tp.topic, key=b"k", value=b"new", partition=0).get(timeout=30)
    producer.close()

    job = Purge(settings, now_ms - 3_600_000, False, make_admin(settings, "t"), make_consumer(settings, None, "t"))
    result = TopicPurge(tp.topic, "table")
    try:
        cut = _tombstone_stale(job, tp, 0, read_up_to, read_up_to, result)
    finally:
        job.close()
    assert (cut, result.tombstones, result.republished) == (1, 1, 1)
    assert [(r.key, r.value) for r in _read_all(settings, tp.topic) if r.partition == 0] == [
        (b"k", b"old"),
        (b"k", b"new"),
        (b"k", None),
        (b"k", b"new"),  # the latest: the new value stands
    ]

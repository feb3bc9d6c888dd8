"""The interactive check's decisions without a broker: members of later ports only, the most restrictive answer,
overrides per member, missing data, the fallback when the broker fails or the deadline passes, the rate bucket.
(tests/integration/test_iapi.py runs the same path through the real broker.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from kafka.errors import KafkaTimeoutError

from services import codec
from services.board.policy import PolicyStore
from services.config import HubSettings
from services.directory import load_directory
from services.errors import ConfigError
from services.profiler.check import CheckEngine, TokenBucket, itinerary_ports
from services.profiler.tables import TableLock, TableSync
from services.wire import check_pb2, delivery_pb2, hit_pb2, manifest_pb2

OK = check_pb2.DIRECTIVE_OK_TO_BOARD
DNB = check_pb2.DIRECTIVE_DO_NOT_BOARD
CA = check_pb2.DIRECTIVE_CONTACT_AUTHORITY
INSUFFICIENT = check_pb2.DIRECTIVE_INSUFFICIENT_DATA
SETTINGS = HubSettings(topic_prefix="t")
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def policy(member: str, section: str = "do_not_board", fallback: str = "CONTACT_AUTHORITY", require="[]") -> bytes:
    return f"""version: 1
member: {member}
fallback: {fallback}
require: {require}
{section}:
  - watchlist: {{owners: any, min_score: 0.9}}
""".encode()


class FakeWorker:
    """The worker's tables as the engine reads them; scoring flags the passenger refs in ``flagged``."""

    def __init__(self) -> None:
        self.tables = TableSync([])
        self.lock = TableLock()
        self.policies = PolicyStore()
        self.overrides: dict[str, delivery_pb2.BoardOverride] = {}
        self.flagged: dict[str, float] = {}

    def score_check(self, manifests, now, timeout_s):
        hits = []
        for manifest, t in ((m, t) for m in manifests for t in m.travellers):
            if t.passenger_ref in self.flagged:
                hit = hit_pb2.Hit(
                    hit_id=codec.hit_id(codec.flight_key(manifest), codec.traveller_key(t)),
                    manifest_id=manifest.manifest_id,
                    traveller=t,
                )
                hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="E1", owner="AUS", category="wanted",
                                score=self.flagged[t.passenger_ref])  # fmt: skip
                hits.append(hit)
        return hits


class Future:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def get(self, timeout=None):
        if self.fail:
            raise KafkaTimeoutError("not acknowledged")

    def add_callback(self, fn):
        if not self.fail:
            fn(None)

    def add_errback(self, fn):
        if self.fail:
            fn(KafkaTimeoutError("not acknowledged"))


class Producer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, value))
        return Future(self.fail)


def manifest(route=("SYD", "NAN", "TBU"), refs=("P1", "P2")) -> manifest_pb2.Manifest:
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911")
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(
            datetime(2026, 12, 7, 7, tzinfo=UTC)
        )
    for ref in refs:
        t = m.travellers.add(surname="Tupou", given_names="Sione", passenger_ref=ref, nationality="TON")
        t.date_of_birth.year = 1980
        t.documents.add(type=manifest_pb2.DOCUMENT_TYPE_PASSPORT, number="X1", issuing_state="TON")
    return m


def engine(worker: FakeWorker, producer: Producer | None = None) -> CheckEngine:
    return CheckEngine(SETTINGS, load_directory(), worker, producer or Producer(), clock=lambda: NOW)


def answer(worker, m, producer=None, seconds=5.0):
    checks = engine(worker, producer)
    try:
        return checks.check(m, "FJ", time.monotonic() + seconds)
    finally:
        checks.close()


def test_only_members_of_later_ports_answer_and_the_most_restrictive_wins():
    worker = FakeWorker()
    worker.flagged["P2"] = 0.95
    worker.policies.apply_record(b"FJI", policy("FJI", "contact_authority"))
    worker.policies.apply_record(b"TON", policy("TON", "do_not_board"))
    worker.policies.apply_record(b"AUS", policy("AUS", "do_not_board"))
    producer = Producer()
    reply = answer(worker, manifest(), producer)
    # Fiji (transit) says contact authority, Tonga (destination) do not board: do not board. Australia is the
    # first origin: no port of it lies ahead, so its policy has no say.
    assert [a.directive for a in reply.answers] == [OK, DNB]
    [hit_bytes] = [v for topic, v in producer.sent if topic == "t.hits.v1"]
    hit = hit_pb2.Hit.FromString(hit_bytes)
    assert hit.interactive and dict(hit.directives) == {"FJI": CA, "TON": DNB}
    audit = [delivery_pb2.AuditEvent.FromString(v) for topic, v in producer.sent if topic == "t.audit.v1"]
    assert sorted((e.member, e.detail.split(" ")[0]) for e in audit) == [
        ("FJI", "CONTACT_AUTHORITY"), ("FJI", "OK_TO_BOARD"), ("TON", "DO_NOT_BOARD"), ("TON", "OK_TO_BOARD"),
    ]  # fmt: skip


def test_a_traveller_boarding_at_the_transit_port_is_answered_by_the_members_ahead_only():
    m = manifest()
    m.travellers[1].embarkation = "NAN"
    assert itinerary_ports(codec.route_of(m), m.travellers[1]) == ["TBU"]
    m.travellers[0].debarkation = "NAN"
    assert itinerary_ports(codec.route_of(m), m.travellers[0]) == ["NAN"]
    worker = FakeWorker()
    worker.flagged.update(P1=0.95, P2=0.95)
    worker.policies.apply_record(b"TON", policy("TON", "do_not_board"))
    # P1 leaves at Nadi: Tonga's policy is not asked. P2 boards at Nadi for Tonga.
    assert [a.directive for a in answer(worker, m).answers] == [OK, DNB]


def test_an_override_lifts_only_its_members_refusal():
    worker = FakeWorker()
    worker.flagged["P2"] = 0.95
    worker.policies.apply_record(b"FJI", policy("FJI", "do_not_board"))
    worker.policies.apply_record(b"TON", policy("TON", "do_not_board"))
    m = manifest()
    hit_id = codec.hit_id(codec.flight_key(m), codec.traveller_key(m.travellers[1]))
    worker.overrides[f"TON/{hit_id}"] = delivery_pb2.BoardOverride(member="TON", hit_id=hit_id)
    assert [a.directive for a in answer(worker, m).answers] == [OK, DNB]  # Fiji still refuses
    worker.overrides[f"FJI/{hit_id}"] = delivery_pb2.BoardOverride(member="FJI", hit_id=hit_id)
    assert [a.directive for a in answer(worker, m).answers] == [OK, OK]


def test_missing_required_fields_and_unscreenable_travellers_are_insufficient_data():
    worker = FakeWorker()
    worker.policies.apply_record(b"TON", policy("TON", require="[date_of_birth]"))
    m = manifest(refs=("P1", "P2", "P3"))
    m.travellers[0].ClearField("date_of_birth")
    m.travellers[2].surname = m.travellers[2].given_names = "?"
    reply = answer(worker, m)
    assert [a.directive for a in reply.answers] == [INSUFFICIENT, OK, INSUFFICIENT]
    assert [list(a.missing_fields) for a in reply.answers] == [
        ["travellers[0].date_of_birth"],
        [],
        ["travellers[2].surname"],
    ]
    # No flight to check against: every traveller insufficient, naming what is missing.
    del m.legs[:]
    reply = answer(worker, m)
    assert {a.directive for a in reply.answers} == {INSUFFICIENT} and reply.errors
    assert all("legs" in a.missing_fields[0] for a in reply.answers)


def test_a_broker_failure_or_the_deadline_answers_the_members_fallback():
    worker = FakeWorker()
    worker.flagged["P2"] = 0.95
    worker.policies.apply_record(b"TON", policy("TON", fallback="DO_NOT_BOARD"))
    worker.policies.apply_record(b"FJI", policy("FJI", "contact_authority"))
    reply = answer(worker, manifest(), Producer(fail=True))
    assert reply.fallback and [a.directive for a in reply.answers] == [DNB, DNB]
    # Past the deadline: the same, never a silent OK (Fiji's default fallback, contact authority, for a flight
    # ending in Fiji).
    reply = answer(worker, manifest(route=("SYD", "NAN")), seconds=0.0)
    assert reply.fallback and [a.directive for a in reply.answers] == [CA, CA]


def test_a_route_no_member_governs_is_ok_to_board():
    worker = FakeWorker()
    worker.flagged["P2"] = 0.99
    assert [a.directive for a in answer(worker, manifest(route=("LAX", "HNL"))).answers] == [OK, OK]


def test_the_rate_bucket_refuses_beyond_its_burst_and_refills():
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=5, clock=lambda: now[0])
    assert bucket.take(5) and not bucket.take(1)
    now[0] = 0.5
    assert bucket.take(5) and not bucket.take(1)


def test_every_directive_needs_a_cusres_code():
    settings = SETTINGS.model_copy(update={"iapi_erc_codes": {"OK_TO_BOARD": "0Z", "DO_NOT_BOARD": "1Z"}})
    with pytest.raises(ConfigError, match="CONTACT_AUTHORITY"):
        CheckEngine(settings, load_directory(), FakeWorker(), Producer())


def test_checks_arriving_together_are_screened_in_one_batch():
    """The batcher screens what waits together: many checks at once cost far fewer screening calls."""
    import threading

    worker = FakeWorker()
    calls: list[int] = []
    score = worker.score_check

    def counted(manifests, now, timeout_s):
        calls.append(len(manifests))
        time.sleep(0.05)  # a screening call takes a while: the others queue meanwhile
        return score(manifests, now, timeout_s)

    worker.score_check = counted
    checks = engine(worker)
    try:
        replies: list = []
        threads = [
            threading.Thread(target=lambda: replies.append(checks.check(manifest(), "FJ", time.monotonic() + 10)))
            for _ in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        checks.close()
    assert len(replies) == 20 and not any(r.fallback for r in replies)
    assert sum(calls) == 20 and len(calls) < 20


def test_a_listed_document_under_another_name_is_a_document_match_a_policy_refuses():
    """A lost or stolen passport carried by someone else (other name, other birth date): the matcher's document
    evidence alone makes the reason, marked document_match, which a `document:` condition turns into DO_NOT_BOARD."""
    from services.board.policy import parse_policy
    from services.profiler.scoring import score_batch
    from services.profiler.watchlist import WatchlistStore

    store = WatchlistStore({})
    entry = delivery_pb2.WatchlistEntry(
        entry_id="FJI-LS-1", surname="KOROI", given_names="MERE", document_number="FJ1234567",
        document_issuer="FJI", category="stolen", owner="FJI", date_of_birth=manifest_pb2.PartialDate(year=1980),
    )  # fmt: skip
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=[entry]))
    m = manifest(route=("SYD", "NAN"), refs=("P1",))
    m.travellers[0].documents[0].number = "FJ1234567"
    [hit] = score_batch([m], store, load_directory(), NOW, watchlist_threshold=0.7)
    [reason] = hit.reasons
    assert reason.document_match and reason.category == "stolen"
    stolen = parse_policy(
        "version: 1\nmember: FJI\ndo_not_board:\n  - document: {categories: [lost, stolen]}\n", "test", "FJI"
    )
    assert stolen.decide(hit.reasons) == DNB
    # The same person with their own, unlisted passport: no match at all.
    m.travellers[0].documents[0].number = "X1"
    assert score_batch([m], store, load_directory(), NOW, watchlist_threshold=0.7) == []

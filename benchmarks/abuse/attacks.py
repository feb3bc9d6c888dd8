"""The attacks: each tries one thing an attacker or an unlucky operator would, and says how the hub answered.

An attack returns (Outcome, detail); the suite compares it with what it expects (``@attack(expect=...)``). A gRPC
error raised out of an attack counts through harness.outcome_of_error: a deliberate refusal, a hang, or a crash.
Sizes shrink with ``quick`` (the version `make test` runs); what each attack proves does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import psutil

from benchmarks.abuse.harness import WEBHOOK_MEMBER, Arena, Outcome, outcome_of_error
from services import client
from services.auth import bearer, issue_token
from services.paxlst.writer import render_paxlst
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2, intake_pb2_grpc, manifest_pb2
from synthetic.traffic import DemoTraffic

R, W, A = Outcome.REFUSED, Outcome.WARNED, Outcome.ACCEPTED
# A bystander's call during a flood: it must be answered within this (a hang bound, not a performance target).
BYSTANDER_DEADLINE_S = 15.0


@dataclass(frozen=True)
class Attack:
    name: str
    run: Callable[[Arena, bool], tuple[Outcome, str]]
    expect: frozenset[Outcome]
    about: str


ATTACKS: list[Attack] = []


def attack(*expect: Outcome):
    def register(fn):
        ATTACKS.append(Attack(fn.__name__, fn, frozenset(expect), (fn.__doc__ or "").strip().splitlines()[0]))
        return fn

    return register


# -- manifests ---------------------------------------------------------------------------------------------------
def flight(carrier: str = "FJ", passengers: int = 3, route=("NAN", "FUN"), seed: int = 5) -> manifest_pb2.Manifest:
    m = DemoTraffic(seed=seed).next_manifest(passengers=passengers)
    del m.travellers[passengers:]
    departure = m.legs[0].scheduled_departure
    del m.legs[:]
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.CopyFrom(departure)
    m.carrier = carrier
    m.message_ref = f"ABUSE{time.monotonic_ns()}"
    return m


def _receipt(receipt: intake_pb2.Receipt) -> tuple[Outcome, str]:
    if receipt.status in (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE):
        codes = sorted({w.code for w in receipt.warnings})
        return (W, f"accepted, warnings {codes}") if codes else (A, "accepted")
    return R, f"rejected: {[e.code for e in receipt.errors][:5]}"


def remember(arena: Arena, m: manifest_pb2.Manifest) -> None:
    """Note the travellers' names and document numbers: the suite checks no service logged them."""
    for t in m.travellers[:50]:
        arena.sensitive.update(v for v in (t.surname, t.given_names) if len(v) >= 4 and v.isalpha())
        arena.sensitive.update(d.number for d in t.documents[:3] if len(d.number) >= 6)


def submit(arena: Arena, m: manifest_pb2.Manifest, carrier: str | None = None, timeout: float = 60.0, token: str = ""):
    remember(arena, m)
    token = token or arena.token("carrier", carrier or m.carrier)
    return _receipt(client.submit(arena.ingest(), token, [m], timeout=timeout)[0])


def _bystander_submit(arena: Arena) -> tuple[Outcome, str]:
    try:
        outcome, detail = submit(arena, flight("NZ", route=("AKL", "APW")), timeout=BYSTANDER_DEADLINE_S)
    except grpc.RpcError as exc:
        outcome, detail = outcome_of_error(exc)
    return outcome, detail


def _hold_streams(open_one: Callable[[threading.Event], object], count: int) -> tuple[threading.Event, list]:
    """Open ``count`` calls that stay open until the returned event is set; return it and the calls' errors."""
    release, errors = threading.Event(), []

    def hold() -> None:
        try:
            open_one(release)
        except grpc.RpcError as exc:
            errors.append(exc)

    for _ in range(count):
        threading.Thread(target=hold, daemon=True).start()
    time.sleep(2.0)  # let them reach the server
    return release, errors


# -- principals bounded ------------------------------------------------------------------------------------------
@attack(R)
def carrier_stream_flood(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """One carrier holds many idle SubmitManifests streams open; another carrier's submit must still go through."""
    stub = intake_pb2_grpc.ManifestIntakeStub(arena.ingest())
    token = arena.token("carrier", "FJ")

    def open_one(release: threading.Event) -> None:
        def idle():
            release.wait(60)
            return
            yield

        list(stub.SubmitManifests(idle(), metadata=bearer(token), timeout=90))

    release, errors = _hold_streams(open_one, 40 if quick else 100)
    try:
        outcome, detail = _bystander_submit(arena)
    finally:
        release.set()
    refused = sum(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in errors)
    if outcome not in (A, W):
        return Outcome.LEAKED, f"bystander carrier NZ: {outcome.value} ({detail})"
    return (R, f"{refused} of the flood's streams refused; NZ accepted") if refused else (A, "no stream refused")


@attack(R)
def member_subscribe_flood(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """One member opens many Subscribe streams; another member must still subscribe."""
    chan = arena.delivery()
    stub = delivery_pb2_grpc.HitDeliveryStub(chan)
    token = arena.token("member", "FJI")

    def open_one(release: threading.Event) -> None:
        call = stub.Subscribe(delivery_pb2.SubscribeRequest(member="FJI"), metadata=bearer(token), timeout=90)
        for _ in call:
            if release.is_set():
                call.cancel()
                return

    release, errors = _hold_streams(open_one, 40 if quick else 100)
    try:
        bystander = delivery_pb2_grpc.HitDeliveryStub(arena.delivery())
        call = bystander.Subscribe(
            delivery_pb2.SubscribeRequest(member="TON"),
            metadata=bearer(arena.token("member", "TON")),
            timeout=BYSTANDER_DEADLINE_S,
        )
        try:
            next(iter(call))  # a heartbeat or a hit: the stream is open
        except grpc.RpcError as exc:
            outcome, detail = outcome_of_error(exc)
            return Outcome.LEAKED, f"bystander member TON: {outcome.value} ({detail})"
        finally:
            call.cancel()
    finally:
        release.set()
    refused = sum(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in errors)
    return (R, f"{refused} of FJI's streams refused; TON subscribed") if refused else (A, "no stream refused")


@attack(R)
def rule_file_flood(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Four concurrent 4 MB rule files from one member: refused, while another member's calls are answered."""
    big = "rules:\n" + "".join(
        f"  - id: r{i}\n    when: {{nationality: XXX}}\n    category: test\n" for i in range(60_000)
    )
    results: list[tuple[Outcome, str]] = []

    def load() -> None:
        try:
            client.load_rules(arena.delivery(), arena.token("member", "FJI"), "FJI", big, timeout=120)
            results.append((A, "stored"))
        except grpc.RpcError as exc:
            results.append(outcome_of_error(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        stub = delivery_pb2_grpc.HitDeliveryStub(arena.delivery())
        stub.Ack(
            delivery_pb2.AckRequest(member="TON", cursor=0),
            metadata=bearer(arena.token("member", "TON")),
            timeout=BYSTANDER_DEADLINE_S,
        )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return Outcome.LEAKED, "another member's Ack was not answered during the flood"
    for t in threads:
        t.join(150)
    kinds = {o for o, _ in results}
    if len(results) < 4:
        return Outcome.HUNG, f"{4 - len(results)} rule loads never answered"
    return (R, results[0][1]) if kinds == {R} else (next(iter(kinds - {R})), str(results))


# -- inputs bounded ----------------------------------------------------------------------------------------------
@attack(W)
def megabyte_surname(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A 1 MB surname and document number."""
    m = flight()
    m.travellers[0].surname = "A" * 1_000_000
    m.travellers[1].documents[0].number = "9" * 1_000_000
    return submit(arena, m)


@attack(W)
def control_characters_in_names(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """NUL, ESC, newline, right-to-left override and zero-width characters in names."""
    m = flight()
    m.travellers[0].surname = "TUI\x00LA\x1b[31m"
    m.travellers[1].given_names = "SE\nRU\u202eINA"
    m.travellers[2].surname = "FA\u200bLE\u200d"
    return submit(arena, m)


@attack(R)
def hundred_thousand_travellers(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """100,000 travellers in one manifest (above the limit: the largest ships carry under 10,000)."""
    m = flight(passengers=3)
    template = m.travellers[0]
    for i in range(100_000 - 3):
        t = m.travellers.add()
        t.CopyFrom(template)
        t.passenger_ref = f"P{i}"
    return submit(arena, m, timeout=120)


@attack(R, W)
def five_thousand_legs(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """5,001 legs in one manifest."""
    m = flight()
    leg = m.legs[0]
    for i in range(5_000):
        extra = m.legs.add()
        extra.CopyFrom(leg)
        extra.origin, extra.destination = ("FUN", "NAN") if i % 2 == 0 else ("NAN", "FUN")
    return submit(arena, m)


@attack(R, W)
def fifty_thousand_documents(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """50,001 documents on one traveller."""
    m = flight()
    doc = m.travellers[0].documents[0]
    for i in range(50_000):
        extra = m.travellers[0].documents.add()
        extra.CopyFrom(doc)
        extra.number = f"X{i:08d}"
    return submit(arena, m)


@attack(W)
def arrival_before_departure(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Leg times that contradict each other (UTC sent as local time across the date line)."""
    m = flight()
    leg = m.legs[0]
    leg.scheduled_arrival.seconds = leg.scheduled_departure.seconds - 3600
    return submit(arena, m)


@attack(R)
def undecodable_protobuf(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Bytes that are not a Manifest sent to SubmitManifest."""
    call = arena.ingest().unary_unary(
        "/apihub.v1.ManifestIntake/SubmitManifest", request_serializer=None, response_deserializer=None
    )
    call(b"\xff\xff\xff\xff\x0f garbage", metadata=bearer(arena.token("carrier", "FJ")), timeout=30)
    return A, "garbage accepted"


@attack(R)
def many_errors_reach_the_carrier(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A PAXLST interchange whose 200 messages are all unreadable: the carrier must get its errors, not a
    transport error (the details once outgrew gRPC's metadata limit)."""
    m = flight()
    one = render_paxlst(m).decode()
    body = one[one.index("UNH") : one.index("UNZ")]
    broken = body.replace("TDT+", "XXX+", 1)
    data = one[: one.index("UNH")] + broken * 200 + "UNZ+200+1'"
    try:
        stub = intake_pb2_grpc.ManifestIntakeStub(arena.ingest())
        stub.SubmitPaxlst(
            intake_pb2.PaxlstInterchange(data=data.encode()), metadata=bearer(arena.token("carrier", "FJ")), timeout=60
        )
    except grpc.RpcError as exc:
        outcome, detail = outcome_of_error(exc)
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            receipts = client.answer_from_error(exc, intake_pb2.PaxlstReceipts)
            if receipts is None:
                return Outcome.CRASHED, "rejection without its receipts"
        return outcome, detail
    return A, "accepted"


@attack(W)
def junk_after_unz(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A PAXLST file with a junk line after UNZ, as carriers' files often have."""
    data = render_paxlst(flight()) + b"\r\n\x1a\x00\x00JUNK LINE\r\n"
    receipts = client.submit_paxlst(arena.ingest(), arena.token("carrier", "FJ"), data)
    if len(receipts.receipts) != 1:
        return R, f"{len(receipts.receipts)} receipts for one message"
    outcome, detail = _receipt(receipts.receipts[0])
    if outcome is A and receipts.warnings:
        return W, f"accepted, interchange warnings {[w.code for w in receipts.warnings]}"
    return outcome, detail


@attack(W)
def oversized_free_text(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A 5 MiB free-text segment in a PAXLST message."""
    text = render_paxlst(flight()).decode()
    cut = text.index("NAD+")
    data = (text[:cut] + "FTX+AAI+++" + "X" * (5 * 1024 * 1024) + "'" + text[cut:]).encode()
    receipts = client.submit_paxlst(arena.ingest(), arena.token("carrier", "FJ"), data)
    outcome, detail = _receipt(receipts.receipts[0]) if receipts.receipts else (R, "no receipt")
    if outcome is A and receipts.warnings:
        return W, f"accepted, interchange warnings {[w.code for w in receipts.warnings]}"
    return outcome, detail


# -- rule files --------------------------------------------------------------------------------------------------
def _load_rules(arena: Arena, text: str) -> tuple[Outcome, str]:
    client.load_rules(arena.delivery(), arena.token("member", "FJI"), "FJI", text, timeout=60)
    return A, "stored"


@attack(R)
def deeply_nested_rule_file(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A rule file nested 5,000 deep."""
    return _load_rules(arena, "rules:\n  - id: deep\n    when: " + "[" * 5000 + "]" * 5000 + "\n")


@attack(R)
def nul_in_rule_file(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A rule file holding a NUL character."""
    return _load_rules(arena, "rules:\n  - id: a\x00b\n    when: {nationality: XXX}\n    category: t\n")


@attack(R)
def python_tag_in_rule_file(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A rule file with a !!python/name: tag."""
    return _load_rules(
        arena, "rules:\n  - id: t\n    when: {nationality: !!python/name:os.system XXX}\n    category: t\n"
    )


# -- credentials ------------------------------------------------------------------------------------------------
@attack(R)
def expired_token(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A carrier token that expired yesterday."""
    old = issue_token(
        arena.settings, "carrier", "FJ", lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2)
    )
    return submit(arena, flight(), token=old)


@attack(R)
def revoked_carrier_token(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A carrier credential revoked in the directory (by its id)."""
    return submit(arena, flight("PX"), token=arena.revoked_token)


@attack(R)
def forged_token(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A member token signed with a key the hub does not hold."""
    forged = issue_token("an-attackers-own-secret-of-32-bytes!", "member", "AUS")
    stub = delivery_pb2_grpc.HitDeliveryStub(arena.delivery())
    stub.Ack(delivery_pb2.AckRequest(member="AUS", cursor=0), metadata=bearer(forged), timeout=10)
    return Outcome.LEAKED, "a forged token acknowledged Australia's hits"


@attack(R)
def tokenless_flood(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Many SubmitManifests streams without a token; a carrier's submit must still go through."""
    stub = intake_pb2_grpc.ManifestIntakeStub(arena.ingest())

    def open_one(release: threading.Event) -> None:
        def idle():
            release.wait(60)
            return
            yield

        list(stub.SubmitManifests(idle(), timeout=90))

    release, errors = _hold_streams(open_one, 40 if quick else 100)
    try:
        outcome, detail = _bystander_submit(arena)
    finally:
        release.set()
    if outcome not in (A, W):
        return Outcome.LEAKED, f"bystander carrier NZ: {outcome.value} ({detail})"
    refused = sum(e.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED) for e in errors)
    return (R, f"{refused} tokenless streams refused; NZ accepted") if refused else (A, "none refused")


@attack(R)
def metrics_on_every_interface(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Where the services' metrics pages listen: loopback only unless APIHUB_METRICS_HOST says otherwise."""
    ports = {int(arena.env[f"APIHUB_{s.upper()}_METRICS_PORT"]) for s in ("ingest", "profiler", "router")}
    listening = {}
    for name, proc in arena.procs.items():
        for conn in psutil.Process(proc.pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
                listening[name] = conn.laddr.ip
    if len(listening) < len(ports):
        return Outcome.CRASHED, f"metrics pages not found listening: {listening}"
    exposed = {name: ip for name, ip in listening.items() if not ip.startswith("127.")}
    if exposed:
        return Outcome.LEAKED, f"metrics on {exposed}"
    return R, f"loopback only: {listening}"


# -- cross-principal ---------------------------------------------------------------------------------------------
@attack(R)
def carrier_submits_for_another(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Carrier FJ submits a manifest of carrier NZ."""
    return submit(arena, flight("NZ"), carrier="FJ")


@attack(R)
def member_reads_another(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """Member FJI subscribes to Australia's hits with its own token."""
    stub = delivery_pb2_grpc.HitDeliveryStub(arena.delivery())
    call = stub.Subscribe(
        delivery_pb2.SubscribeRequest(member="AUS"), metadata=bearer(arena.token("member", "FJI")), timeout=10
    )
    for delivery in call:
        call.cancel()
        return Outcome.LEAKED, f"got a {'heartbeat' if delivery.heartbeat else 'hit'} of AUS"
    return A, "stream ended"


def list_traveller(arena: Arena, t: manifest_pb2.Traveller, owner: str) -> None:
    """Put a traveller on ``owner``'s watchlist, so that a manifest carrying them raises a hit for ``owner``."""
    entry = delivery_pb2.WatchlistEntry(
        entry_id=f"{owner}-ABUSE-1",
        surname=t.surname,
        given_names=t.given_names,
        date_of_birth=t.date_of_birth,
        nationality=t.nationality,
        document_number=t.documents[0].number,
        category="abuse_suite",
        owner=owner,
    )
    token = arena.token("member", owner)
    client.load_watchlist(arena.delivery(), token, owner, [entry], delivery_pb2.WATCHLIST_SCOPE_REGIONAL)
    time.sleep(2.0)  # the profiler picks up the list


# -- channels ----------------------------------------------------------------------------------------------------
@attack(R)
def webhook_redirect(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A member's webhook answers 302 to another address: the hub must not follow it."""
    m = flight(route=("NAN", "FUN"))
    list_traveller(arena, m.travellers[0], WEBHOOK_MEMBER)
    submit(arena, m)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not arena.webhook_calls().get("POST /hook"):
        time.sleep(0.5)
    time.sleep(3.0)  # room for a redirect to be followed, if it were
    calls = arena.webhook_calls()
    if not calls.get("POST /hook"):
        return Outcome.HUNG, "the hit never reached the webhook"
    leaked = {k: v for k, v in calls.items() if "/sink" in k}
    if leaked:
        return Outcome.LEAKED, f"redirect followed: {leaked}"
    return R, f"{calls['POST /hook']} POSTs answered 302, none followed"


@attack(W, R)
def escape_sequences_to_member_terminal(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """A passenger reference with terminal escape sequences, printed by `apihub hits follow`."""
    m = flight(route=("NAN", "TBU"), seed=9)
    t = m.travellers[0]
    t.passenger_ref = "\x1b]0;pwned\x07\x1b[2J"
    list_traveller(arena, t, "TON")
    received, detail = submit(arena, m)
    token = arena.token("member", "TON")
    run = arena.cli("hits", "follow", "--member", "TON", "--token", token, "--idle-exit", "8", timeout=90)
    out = run.stdout + run.stderr
    if b"\x1b" in out or b"\x07" in out:
        return Outcome.LEAKED, "escape sequences reached the member's terminal"
    if b"Traceback" in out:
        return Outcome.CRASHED, "hits follow ended in a traceback"
    return (W if received is W else R), f"intake: {detail}; terminal output clean ({len(out)} bytes)"


# -- files -------------------------------------------------------------------------------------------------------
def _cli_outcome(run, accepted_code: int = 0) -> tuple[Outcome, str]:
    err = (run.stderr or b"").decode(errors="replace")
    if "Traceback" in err:
        return Outcome.CRASHED, err.strip().splitlines()[-1][:160]
    if run.returncode == accepted_code:
        return A, "done"
    return R, f"exit {run.returncode}: {err.strip().splitlines()[-1][:160] if err.strip() else ''}"


@attack(R, A)
def watchlist_csv_in_latin1_and_utf16(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """`apihub watchlist load` of a Latin-1 CSV and of a UTF-16 CSV."""
    text = (
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"
        "E1,MÜLLER,JOSÉ,1980-01-02,M,DEU,C01X00T47,DEU,test,FJI\n"
    )
    outcomes = []
    for name, data in (("latin1.csv", text.encode("latin-1")), ("utf16.csv", text.encode("utf-16"))):
        (arena.workdir / name).write_bytes(data)
        run = arena.cli(
            "watchlist", "load", "--member", "FJI", "--token", arena.token("member", "FJI"), str(arena.workdir / name)
        )
        outcomes.append(_cli_outcome(run))
    worst = next((o for o in outcomes if o[0] is Outcome.CRASHED), outcomes[0])
    return worst[0], "; ".join(d for _, d in outcomes)


@attack(R)
def screen_with_missing_watchlist(arena: Arena, quick: bool) -> tuple[Outcome, str]:
    """`apihub screen --watchlist` of a file that does not exist."""
    manifest = arena.workdir / "one.edi"
    manifest.write_bytes(render_paxlst(flight()))
    return _cli_outcome(arena.cli("screen", "--watchlist", str(arena.workdir / "missing.csv"), str(manifest)))

"""Interactive API (iAPI): a carrier checks travellers at check-in and gets one directive per traveller.

Served by each profiler process (``CheckServer`` on settings.check_listen), which holds the lists, rules, board
policies and overrides in memory (services.profiler.tables) and scores with the batch path's own code
(ProfilerWorker.score_check -> score_batch). Intake stays independent of the profiler: a check never passes
through it. One check:

1. the carrier's principal may check only its own codes; a token bucket per carrier (check_rate_per_carrier,
   check_burst travellers) bounds how fast it can ask, so nobody probes the lists by checking made-up people;
2. the travellers are cleaned and validated exactly as intake does (services.edge); what identifies the flight
   missing -> every traveller INSUFFICIENT_DATA naming the fields; a traveller without a usable name ->
   INSUFFICIENT_DATA (it cannot be screened);
3. the tables are caught up (so a policy, list or override the broker acknowledged before the check is in force),
   then the check's manifest is scored;
4. every member with jurisdiction over a later port of the traveller's itinerary (after the traveller's
   embarkation, up to its debarkation) applies its board policy (services.board): the reasons -> a directive,
   missing required fields -> INSUFFICIENT_DATA; the member's standing override of that hit turns its
   DO_NOT_BOARD / CONTACT_AUTHORITY into OK_TO_BOARD; the most restrictive answer of all those members wins. No
   member with jurisdiction: OK_TO_BOARD (nobody has a say); the default policy answers OK to board: the hub never
   invents a refusal a member did not set;
5. the hits (Hit.interactive, Hit.directives: every member's answer, the router gives each member its own) go to
   the hits topic under the flight key, one audit event "checked" per traveller and member to the audit topic;
   the answer is sent once the broker acknowledged them all.

Whatever stops 3-5 in time (the broker down, the tables still loading after a start, the deadline: the sooner of
check_deadline_ms and the carrier's own gRPC deadline) answers each traveller with the most restrictive
``fallback`` of its members' policies (CONTACT_AUTHORITY unless a member chose DO_NOT_BOARD), never a silent OK.
The carrier sees the directive, the missing fields and the member's text, never a reason, category, score or list.
Logs and metric labels carry ids, codes and counts, never the people.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from kafka.errors import KafkaError
from prometheus_client import Counter, Histogram

from services import codec
from services.auth import authenticate
from services.board.policy import DEFAULT_MESSAGES, DIRECTIVE_ORDER, directive_name, most_restrictive
from services.bus import Topics, make_producer
from services.config import CHECK_SPARE_THREADS, HubSettings
from services.directory import Directory
from services.edge.cleaning import IntakeLimits, clean_manifest, listed_warnings
from services.edge.validation import SKIPPED_TRAVELLER
from services.errors import ConfigError
from services.limits import Limiter, LimitInterceptor, Limits
from services.serving import add_standard_services, bind, new_grpc_server
from services.wire import check_pb2, check_pb2_grpc, delivery_pb2, hit_pb2, intake_pb2, manifest_pb2

log = logging.getLogger(__name__)

OK = check_pb2.DIRECTIVE_OK_TO_BOARD
DO_NOT_BOARD = check_pb2.DIRECTIVE_DO_NOT_BOARD
CONTACT_AUTHORITY = check_pb2.DIRECTIVE_CONTACT_AUTHORITY
INSUFFICIENT_DATA = check_pb2.DIRECTIVE_INSUFFICIENT_DATA
# What an override lifts: a member's refusal, not missing data.
OVERRIDABLE = frozenset({DO_NOT_BOARD, CONTACT_AUTHORITY})

SERVICE_NAMES = [check_pb2.DESCRIPTOR.services_by_name["InteractiveCheck"].full_name]

CHECKS = Counter(
    "apihub_check_requests",
    "Interactive checks answered, by carrier, format and outcome",
    ["carrier", "format", "outcome"],
)
ANSWERS = Counter(
    "apihub_check_answers", "Directives given to carriers, by carrier and directive", ["carrier", "directive"]
)
FALLBACKS = Counter(
    "apihub_check_fallbacks",
    "Checks answered with the members' fallback, by cause (loading: the tables' first load after a start; tables: "
    "not caught up in time; broker: the check's records not acknowledged; deadline: screening ran out of time)",
    ["cause"],
)
CHECK_SECONDS = Histogram(
    "apihub_check_seconds",
    "From a check's arrival to its answer",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5),
)
BATCH_SIZES = Histogram(
    "apihub_check_batch_travellers",
    "Checks screened together in one batch (CheckBatcher)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 256),
)
RATE_LIMITED = Counter("apihub_check_rate_limited", "Checks refused for the carrier's check rate", ["carrier"])

# Kept for the answer itself: a check whose budget is spent before the broker's acks still needs this long to
# build and send its fallback before the carrier's deadline.
ANSWER_MARGIN_S = 0.05
FLIGHT_FIELDS = ("carrier", "flight_number", "legs")


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; take(n) says whether n were there (and takes them)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if n > self._tokens:
                return False
            self._tokens -= n
            return True


class CarrierRates:
    """One TokenBucket per carrier: one carrier's checks never spend another's."""

    def __init__(self, settings: HubSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings, self._clock = settings, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, carrier: str, n: int) -> bool:
        with self._lock:
            bucket = self._buckets.get(carrier)
            if bucket is None:
                s = self._settings
                bucket = self._buckets[carrier] = TokenBucket(s.check_rate_per_carrier, s.check_burst, self._clock)
        return bucket.take(n)


def itinerary_ports(route: Sequence[str], traveller: manifest_pb2.Traveller) -> list[str]:
    """The ports of the route after the traveller's embarkation (the first port when not given or not on the
    route), up to its debarkation when that is on the route: where the traveller will arrive or transit."""
    ports = list(route)
    start = ports.index(traveller.embarkation) if traveller.embarkation in ports else 0
    later = ports[start + 1 :]
    if traveller.debarkation in later:
        later = later[: later.index(traveller.debarkation) + 1]
    return later


@dataclass
class Verdict:
    """One traveller's answer and what the members and the audit trail are told of it."""

    index: int
    directive: int = OK
    missing: list[str] = field(default_factory=list)
    message: str = ""
    members: dict[str, int] = field(default_factory=dict)  # member -> its directive
    overridden: set[str] = field(default_factory=set)  # members whose override lifted their refusal
    hit_id: str = ""


class CheckEngine:
    """Checks on one profiler worker's tables; ``check()`` is thread-safe."""

    def __init__(self, settings: HubSettings, directory: Directory, worker, producer, clock=None) -> None:
        self._settings = settings
        self._directory = directory
        self._worker = worker
        self._producer = producer
        self._topics = Topics(settings.topic_prefix)
        self._limits = IntakeLimits.from_settings(settings)
        self._clock = clock or (lambda: datetime.now(UTC))
        unset = [name for name in map(directive_name, DIRECTIVE_ORDER) if not settings.iapi_erc_codes.get(name)]
        if unset:
            raise ConfigError(f"APIHUB_IAPI_ERC_CODES has no CUSRES code for {', '.join(unset)}")
        self._batcher = CheckBatcher(self.screen_batch, gather_s=settings.check_gather_ms / 1000.0)

    def close(self) -> None:
        """Stop the batcher (checks still waiting are answered with the fallback)."""
        self._batcher.close()

    # -- the check ----------------------------------------------------------------------------------------
    def check(self, request: manifest_pb2.Manifest, carrier: str, deadline: float, fmt: str = "grpc"):
        """The answer to one check (a CheckResponse); ``deadline`` is a time.monotonic() value."""
        started = time.monotonic()
        check_id = "c-" + uuid.uuid4().hex[:20]
        response = check_pb2.CheckResponse(check_id=check_id)
        verdicts, manifest = self._read(request, response)
        outcome = "answered"
        if manifest is not None and any(v.hit_id for v in verdicts):
            cause = self._screen(manifest, verdicts, carrier, check_id, deadline)
            if cause:
                outcome = "fallback"
                FALLBACKS.labels(cause=cause).inc()
                response.fallback = True
                self._fall_back(manifest, verdicts)
                log.warning("check %s from %s answered with the fallback: %s", check_id, carrier, cause)
        elif manifest is None:
            outcome = "unroutable"
        for traveller, verdict in zip(request.travellers, verdicts, strict=True):
            response.answers.add(
                index=verdict.index,
                passenger_ref=traveller.passenger_ref,
                reservation_locator=traveller.reservation_locator,
                directive=verdict.directive,
                missing_fields=verdict.missing,
                message=verdict.message or DEFAULT_MESSAGES[verdict.directive],
            )
            ANSWERS.labels(carrier, directive_name(verdict.directive)).inc()
        response.answered_at.FromDatetime(self._clock())
        CHECKS.labels(carrier, fmt, outcome).inc()
        CHECK_SECONDS.observe(time.monotonic() - started)
        # Routine answers at debug level (a busy check-in hall makes hundreds a second); any other at info.
        routine = not response.fallback and all(v.directive == OK for v in verdicts)
        log.log(
            logging.DEBUG if routine else logging.INFO,
            "check %s from %s: %d travellers, %s%s",
            check_id,
            carrier,
            len(verdicts),
            ", ".join(f"{directive_name(d)} {n}" for d, n in _count(verdicts).items()),
            " (fallback)" if response.fallback else "",
        )
        return response

    def _read(self, request, response) -> tuple[list[Verdict], manifest_pb2.Manifest | None]:
        """Clean and validate like intake; the verdicts start as INSUFFICIENT_DATA for the travellers that cannot
        be screened. The cleaned manifest keeps only the screenable travellers, in order (None: no flight)."""
        probe = manifest_pb2.Manifest()
        probe.CopyFrom(request)
        # A check screens everyone it names: whatever function the message says (a PAXLST re-send with corrected
        # data is BGM+745+CP; a cancellation or reduction in party would otherwise go unscreened), it is screened
        # as an original.
        probe.function = manifest_pb2.MESSAGE_FUNCTION_ORIGINAL
        probe.ClearField("amendment")
        cleaning = clean_manifest(probe, self._limits)
        verdicts = [Verdict(index=i) for i in range(len(request.travellers))]
        response.warnings.extend(listed_warnings(cleaning.warnings)[0])  # as a receipt lists them: bounded
        if cleaning.errors:
            response.errors.extend(cleaning.errors)
            flight = [e.field for e in cleaning.errors if e.field.split("[")[0].split(".")[0] in FLIGHT_FIELDS]
            unnamed = [e.field for e in cleaning.errors if e.code == SKIPPED_TRAVELLER or e.field == "travellers"]
            for v in verdicts:
                v.directive = INSUFFICIENT_DATA
                v.missing = flight or unnamed or [e.field for e in cleaning.errors]
            return verdicts, None
        skipped = {
            int(w.field[len("travellers[") : -1])
            for w in cleaning.warnings
            if w.code == SKIPPED_TRAVELLER and w.field.startswith("travellers[")
        }
        screened = [v for v in verdicts if v.index not in skipped]
        for v in verdicts:
            if v.index in skipped:
                v.directive = INSUFFICIENT_DATA
                v.missing = [f"travellers[{v.index}].surname"]
        manifest = cleaning.manifest
        # Cleaning keeps the screenable travellers in order: the n-th of the manifest is the n-th screened verdict.
        for traveller, v in zip(manifest.travellers, screened, strict=True):
            v.hit_id = codec.hit_id(codec.flight_key(manifest), codec.traveller_key(traveller))
        manifest.manifest_id = ""
        return verdicts, manifest

    def _screen(self, manifest, verdicts: list[Verdict], carrier: str, check_id: str, deadline: float) -> str:
        """Screen, decide, store (by the batcher, with the checks that arrived meanwhile): "" when done, else why
        the fallback answers."""
        manifest.manifest_id = check_id
        manifest.received_at.FromDatetime(self._clock())
        job = _Job(manifest, [v for v in verdicts if v.hit_id], carrier, check_id, deadline)
        return self._batcher.run(job)

    def screen_batch(self, jobs: list[_Job]) -> None:
        """Screen the jobs together (one score_batch: its cost is mostly per call, not per traveller), decide each
        traveller, send every job's hits and audit events, and set each job's cause ("" when the broker holds all of
        its records). Runs in the batcher's thread."""
        worker = self._worker
        # The shared work may take as long as the latest deadline of the batch: a check whose own deadline passes
        # meanwhile is answered with the fallback by its thread, and never holds up the others.
        last = max(job.deadline for job in jobs)
        # The tables as of the checks' arrival: a list, rule, policy or override the broker acknowledged before.
        try:
            caught_up = worker.tables.sync(_left(last))
        except KafkaError:  # the last catch-up failed: the broker does not answer
            _fail(jobs, "broker" if worker.tables.ready.is_set() else "loading")
            return
        if not caught_up:  # still loading after a start, or the broker too slow to say where the tables end
            _fail(jobs, "tables" if worker.tables.ready.is_set() else "loading")
            return
        try:
            found = worker.score_check([job.manifest for job in jobs], self._clock(), _left(last))
            hits: dict[str, dict[str, hit_pb2.Hit]] = {}
            for hit in found:
                hits.setdefault(hit.manifest_id, {})[hit.hit_id] = hit
            with worker.lock.reading(_left(last)):
                for job in jobs:
                    job.hits = hits.get(job.check_id, {})
                    route = codec.route_of(job.manifest)
                    for traveller, v in zip(job.manifest.travellers, job.screened, strict=True):
                        hit = job.hits.get(v.hit_id)
                        self._decide(traveller, v, hit.reasons if hit is not None else (), route)
        except TimeoutError:  # a table (a large list) was being applied for the whole of the checks' time
            _fail(jobs, "tables")
            return
        for job in jobs:
            if time.monotonic() >= job.deadline:
                job.finish("deadline")
                continue
            try:
                futures = self._send(job)
            except KafkaError:
                job.finish("broker")
                continue
            # The broker's acknowledgements finish the job (in the producer's thread): the batcher goes on with the
            # next batch meanwhile.
            job.await_acks(futures)

    def _members(self, route, traveller) -> list[str]:
        """The members with a say on this traveller: jurisdiction over a port ahead of it, in code order."""
        return sorted(self._directory.jurisdiction(itinerary_ports(route, traveller)))

    def _message(self, members: list[str], answers: dict[str, int], directive: int) -> str:
        """The text of the first member (in code order) whose answer is the one given."""
        policies = self._worker.policies
        return next((policies.policy(m).message(directive) for m in members if answers[m] == directive), "")

    def _decide(self, traveller, v: Verdict, reasons, route) -> None:
        members = self._members(route, traveller)
        policies = self._worker.policies
        missing: list[str] = []
        for member in members:
            policy = policies.policy(member)
            decided = policy.decide(reasons)
            if decided in OVERRIDABLE and f"{member}/{v.hit_id}" in self._worker.overrides:
                v.overridden.add(member)
                decided = OK
            lacking = policy.missing(traveller, v.index)
            if lacking:
                missing.extend(p for p in lacking if p not in missing)
                decided = most_restrictive([decided, INSUFFICIENT_DATA])
            v.members[member] = decided
        v.directive = most_restrictive(v.members.values())
        v.missing = missing if v.directive == INSUFFICIENT_DATA else []
        v.message = self._message(members, v.members, v.directive)

    def _send(self, job: _Job) -> list:
        """Send a job's interactive hits and its audit events ("checked", one per traveller and member)."""
        key = codec.flight_key(job.manifest).encode()
        at = Timestamp()
        at.FromDatetime(self._clock())  # one time for the job's events
        futures = []
        for v in job.screened:
            hit = job.hits.get(v.hit_id)
            if hit is not None:
                hit.interactive = True
                for member, directive in v.members.items():
                    hit.directives[member] = directive
                futures.append(self._producer.send(self._topics.hits, key=key, value=hit.SerializeToString()))
            for member, directive in v.members.items():
                event = delivery_pb2.AuditEvent(
                    event="checked",
                    member=member,
                    hit_id=v.hit_id,
                    cursor=-1,
                    detail=_audit_detail(directive, job.carrier, job.check_id, member in v.overridden),
                    at=at,
                )
                futures.append(
                    self._producer.send(self._topics.audit, key=member.encode(), value=event.SerializeToString())
                )
        return futures

    def _fall_back(self, manifest, verdicts: list[Verdict]) -> None:
        """Each screenable traveller: the most restrictive fallback of its members (none: OK, nobody has a say)."""
        route = codec.route_of(manifest)
        screened = [v for v in verdicts if v.hit_id]
        for traveller, v in zip(manifest.travellers, screened, strict=True):
            members = self._members(route, traveller)
            fallbacks = {m: self._worker.policies.policy(m).fallback for m in members}
            v.directive = most_restrictive(fallbacks.values())
            v.missing = []
            v.message = self._message(members, fallbacks, v.directive)

    # -- the answer as CUSRES ------------------------------------------------------------------------------
    def check_paxlst(self, interchange, carrier: str, deadline: float) -> check_pb2.PaxlstCheckResponse:
        """An iAPI PAXLST interchange (services.paxlst.reader.parse_paxlst's): each message checked, the answers
        also as one CUSRES interchange."""
        from services.paxlst.cusres import CusresMessage, CusresTraveller, render_cusres

        reply = check_pb2.PaxlstCheckResponse()
        reply.warnings.extend(interchange.warnings)
        if interchange.errors:
            reply.errors.extend(interchange.errors)
            CHECKS.labels(carrier, "paxlst", "unreadable").inc()
            return reply
        codes = self._settings.iapi_erc_codes
        answers = []
        for message in interchange.messages:
            manifest = message.manifest
            if manifest is None:
                reply.errors.extend(message.errors)
                continue
            if manifest.carrier.upper() != carrier:
                reply.errors.add(
                    field="carrier",
                    code="carrier_not_allowed",
                    segment=message.locate("carrier"),
                    description=f"carrier {carrier} may not check travellers of carrier '{manifest.carrier}'",
                )
                continue
            checked = self.check(manifest, carrier, deadline, fmt="paxlst")
            for violation in (*checked.errors, *checked.warnings):
                violation.segment = violation.segment or message.locate(violation.field)
            reply.checks.append(checked)
            leg = manifest.legs[0] if manifest.legs else manifest_pb2.Leg()
            answers.append(
                CusresMessage(
                    message_ref=message.unh_ref,
                    transaction_ref=manifest.message_ref,
                    flight=f"{manifest.carrier}{manifest.flight_number}",
                    departure=leg.scheduled_departure.ToDatetime(tzinfo=UTC)
                    if leg.HasField("scheduled_departure")
                    else None,
                    arrival=leg.scheduled_arrival.ToDatetime(tzinfo=UTC) if leg.HasField("scheduled_arrival") else None,
                    origin=leg.origin,
                    destination=leg.destination,
                    common_access_ref=message.common_access_ref,
                    travellers=[
                        CusresTraveller(
                            passenger_ref=a.passenger_ref,
                            reservation_locator=a.reservation_locator,
                            code=codes[directive_name(a.directive)],
                            text=a.message,
                        )
                        for a in checked.answers
                    ],
                )
            )
        if answers:
            reply.cusres = render_cusres(
                answers,
                sender=interchange.recipient or "APIHUB",
                recipient=interchange.sender or carrier,
                interchange_ref=interchange.interchange_ref,
                now=self._clock(),
                application_ref=interchange.application_ref or "IAPI",
                syntax=interchange.syntax_id or "UNOA",
                syntax_version=interchange.syntax_version or "4",
                group=interchange.group,
            )
        return reply


@dataclass(eq=False)
class _Job:
    """One check's screenable part, handed to the batcher: its manifest (the screenable travellers), their
    verdicts, and what the batcher found ("" when the broker holds the job's records, else the fallback's cause)."""

    manifest: manifest_pb2.Manifest
    screened: list[Verdict]
    carrier: str
    check_id: str
    deadline: float
    arrived: float = field(default_factory=time.monotonic)
    hits: dict = field(default_factory=dict)
    cause: str | None = None  # None: not done yet
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _unacked: int = 0

    def finish(self, cause: str) -> None:
        """Done, with this cause ("" when the broker holds the job's records); the first word is kept."""
        with self._lock:
            if self.cause is not None:
                return
            self.cause = cause
        self.done.set()

    def await_acks(self, futures: list) -> None:
        """Finish with "" once every future succeeded, or "broker" as soon as one failed."""
        if not futures:
            self.finish("")
            return
        self._unacked = len(futures)

        def acked(_metadata) -> None:
            with self._lock:
                self._unacked -= 1
                last = self._unacked == 0
            if last:
                self.finish("")

        for future in futures:
            future.add_callback(acked)
            future.add_errback(lambda _exc: self.finish("broker"))


def _fail(jobs: Sequence[_Job], cause: str) -> None:
    for job in jobs:
        job.finish(cause)


class CheckBatcher:
    """One thread screening the checks that wait, together: a check arriving while a batch is screened waits for
    the next batch (so the batch grows with the load, and the cost of a screening call is shared). A check whose
    deadline passes before its batch is done is answered with the fallback by its own thread (``run``)."""

    def __init__(self, screen: Callable[[list[_Job]], None], most: int = 256, gather_s: float = 0.0) -> None:
        """``gather_s``: under load (the previous batch ended less than gather_s ago), a batch starts once its first
        check has waited that long (or ``most`` wait): one screening call costs nearly the same for 1 traveller as
        for 20 (polars' cost per call), so a short wait buys larger batches and far less CPU per check, which is what
        keeps the answers fast when the checks pour in. A check after a quiet spell is screened at once."""
        self._screen = screen
        self._most = most
        self._gather_s = gather_s
        self._last_end = float("-inf")
        self._pending: list[_Job] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="check-batcher", daemon=True)
        self._thread.start()

    def run(self, job: _Job) -> str:
        """The job's cause once screened ("" when its records are stored), or "deadline" when its deadline came
        first (the batcher may still store its records after that)."""
        with self._cond:
            if self._closing:
                return "stopping"
            self._pending.append(job)
            self._cond.notify()
        if not job.done.wait(_left(job.deadline)):
            return "deadline"
        return job.cause or ""

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                busy = time.monotonic() - self._last_end < self._gather_s
                start = self._pending[0].arrived + self._gather_s if self._pending and busy else 0.0
                while not self._closing and len(self._pending) < self._most and time.monotonic() < start:
                    self._cond.wait(start - time.monotonic())
                if self._closing:
                    _fail(self._pending, "stopping")
                    return
                jobs, self._pending = self._pending[: self._most], self._pending[self._most :]
            now = time.monotonic()
            late = [job for job in jobs if job.deadline <= now]
            _fail(late, "deadline")
            jobs = [job for job in jobs if job.deadline > now]
            try:
                if jobs:
                    self._screen(jobs)  # finishes each job, or leaves it to the broker's acknowledgements
            except Exception:  # noqa: BLE001 - a check is answered with the fallback, the batcher goes on
                log.exception("screening a batch of %d checks failed", len(jobs))
                _fail(jobs, "error")
            BATCH_SIZES.observe(len(jobs))
            self._last_end = time.monotonic()

    def close(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


def _count(verdicts: Sequence[Verdict]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in verdicts:
        counts[v.directive] = counts.get(v.directive, 0) + 1
    return counts


def _audit_detail(directive: int, carrier: str, check_id: str, overridden: bool) -> str:
    """What the trail says of one member's answer: the directive, the carrier and the check; never the reasons."""
    text = f"{directive_name(directive)} to carrier {carrier}, check {check_id}"
    return text + " (override)" if overridden else text


class InteractiveCheckServicer(check_pb2_grpc.InteractiveCheckServicer):
    def __init__(self, settings: HubSettings, engine: CheckEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._rates = CarrierRates(settings)

    def _begin(self, context: grpc.ServicerContext) -> tuple[str, float]:
        """The carrier's code and the check's deadline (from its arrival), or abort (token)."""
        arrived = time.monotonic()
        principal = authenticate(context, self._settings, "carrier")
        budget = self._settings.check_deadline_ms / 1000.0
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining - ANSWER_MARGIN_S)
        return principal.code, arrived + max(budget, 0.0)

    def _admit(self, context: grpc.ServicerContext, carrier: str, travellers: int) -> None:
        """Abort a check naming too many travellers, or beyond the carrier's check rate."""
        most = self._settings.check_max_travellers
        if travellers > most:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a check may name at most {most} travellers (APIHUB_CHECK_MAX_TRAVELLERS), not {travellers}",
            )
        if not self._rates.take(carrier, max(travellers, 1)):
            RATE_LIMITED.labels(carrier).inc()
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"carrier {carrier} checks more travellers a second than the hub allows "
                "(APIHUB_CHECK_RATE_PER_CARRIER); retry in a second",
            )

    def CheckTravellers(self, request: check_pb2.CheckRequest, context: grpc.ServicerContext):
        carrier, deadline = self._begin(context)
        if request.manifest.carrier.upper() != carrier:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"carrier {carrier} may not check travellers of carrier '{request.manifest.carrier}'",
            )
        self._admit(context, carrier, len(request.manifest.travellers))
        return self._engine.check(request.manifest, carrier, deadline)

    def CheckPaxlst(self, request: intake_pb2.PaxlstInterchange, context: grpc.ServicerContext):
        from services.paxlst.reader import parse_paxlst

        carrier, deadline = self._begin(context)
        interchange = parse_paxlst(request.data)  # bounded by the message size limit; never raises
        travellers = sum(len(m.manifest.travellers) for m in interchange.messages if m.manifest is not None)
        self._admit(context, carrier, travellers)
        return self._engine.check_paxlst(interchange, carrier, deadline)


class CheckServer:
    """The profiler's InteractiveCheck gRPC server; binds at once (a check during start-up gets the fallback)."""

    def __init__(self, settings: HubSettings, directory: Directory, worker, listen: str | None = None) -> None:
        # Never blocks a check longer than its deadline waiting for the broker's metadata or buffer space; the
        # records of a batch of checks go in one request (they are sent together: a short linger gathers them).
        self.producer = make_producer(
            settings, client_id="apihub-profiler-checks", linger_ms=2, max_block_ms=settings.check_deadline_ms
        )
        self.engine = CheckEngine(settings, directory, worker, self.producer)
        # Every carrier bounded (services.limits), with check_carrier_calls in progress each: a carrier's check-in
        # desks ask at once, and no carrier, however many, holds every thread.
        limits = Limits.from_settings(settings)
        # Checks are short and many (one per traveller at check-in): this server lets all but a few of its threads
        # (CHECK_SPARE_THREADS, which answer health checks and refusals) take calls, not limit_total_calls.
        threads = max(settings.check_grpc_threads, settings.grpc_threads)
        limits = dataclasses.replace(limits, total_calls=max(limits.total_calls, threads - CHECK_SPARE_THREADS))
        # A carrier's share: check_carrier_calls, within what the reserve leaves (small test settings included).
        calls = max(1, min(settings.check_carrier_calls, limits.total_calls - limits.reserved_calls))
        carrier = limits.kinds["carrier"]
        limits.kinds["carrier"] = dataclasses.replace(
            carrier, calls=calls, streams=min(carrier.streams, calls), admin_calls=calls
        )
        self.limits = LimitInterceptor(settings, Limiter(limits))
        self.server: grpc.Server = new_grpc_server(settings.model_copy(update={"grpc_threads": threads}), self.limits)
        check_pb2_grpc.add_InteractiveCheckServicer_to_server(
            InteractiveCheckServicer(settings, self.engine), self.server
        )
        self.health = add_standard_services(self.server, SERVICE_NAMES)
        self.port = bind(self.server, listen or settings.check_listen, settings)

    def start(self) -> CheckServer:
        self.server.start()
        return self

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.engine.close()
        self.producer.flush(timeout=10)
        self.producer.close(timeout=10)

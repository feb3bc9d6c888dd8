"""Interactive API administration for members, gRPC BoardAdmin: a member's board policy (the YAML file that turns
its hits into the directives an interactive check answers carriers) and its duty officers' board overrides.

- LoadBoardPolicy checks the file with the policy language (services.board.policy, within PolicyLimits, at most one
  file of a member at a time and APIHUB_RULES_PARSE_CONCURRENCY files in all: admin.ParseGate); problems come back
  as the answer's errors, with their lines, and nothing is stored. A file without problems is written to the audit
  trail ("policy-loaded", its digest, the officer) and stored on the compacted board-policies topic (key = member,
  value = the YAML as UTF-8), and the call answers once the broker acknowledged both: every profiler applies it.
- GetBoardPolicy answers the member's current file ("" when it has none), read from that topic.
- Override lets one traveller board one flight despite the member's do-not-board (or contact-authority) answer: a
  BoardOverride on the compacted overrides topic (key MEMBER/hit id), written with the audit event "overridden"
  (detail "override", or "revoked" for a withdrawal, and the officer). Only for a hit the member received (its
  delivery ledger says so, as Dispose checks): any other id answers NOT_FOUND, never whether it exists for others.
- ListOverrides answers the member's overrides, revoked ones included (revoked = true), newest first.

Every call names a member and is checked like RulesAdmin and MemberRecords (services.auth.authorize_member_call: a
member token for exactly that member, or the hub's console for any member); the console must name its officer
(``apihub-user``) for a load and an override. Reads hold one of the member's slots (records.RecordsGate) and answer
a broker outage UNAVAILABLE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError
from prometheus_client import Counter

from services.auth import authorize_member_call
from services.board.policy import PolicyError, PolicyLimits, parse_policy
from services.bus import TableReader, Topics, make_consumer
from services.config import HubSettings
from services.directory import Directory
from services.router.admin import ConfigProducer, ParseBusyError, ParseGate
from services.router.delivery import HitDeliveryServicer, audit_event
from services.router.records import FollowedTable, RecordsGate, RulesTable, member_call
from services.wire import delivery_pb2, delivery_pb2_grpc

log = logging.getLogger(__name__)

POLICIES_LOADED = Counter("apihub_router_board_policies_loaded", "Board policies acknowledged by the broker.")
OVERRIDES = Counter(
    "apihub_router_board_overrides", "Board overrides written (and withdrawn), by member", ["member", "action"]
)

# Bound on the broker's round trips of one call (catch-ups), so an outage answers UNAVAILABLE.
KAFKA_TIMEOUT_S = 10.0
BOOTSTRAP_TIMEOUT_MS = 10_000
HIT_ID_MAX = 256
# An override's reason: the officer's words, one line.
REASON_MAX = 300
# ListOverrides answers at most this many (the newest).
OVERRIDES_MAX = 1000


class OverridesTable:
    """Every member's latest BoardOverride of each hit, from the compacted overrides topic (key MEMBER/hit id; a
    tombstone removes it). A record whose value does not match its key is skipped."""

    def __init__(self) -> None:
        self._overrides: dict[str, dict[str, delivery_pb2.BoardOverride]] = {}

    def apply(self, key: bytes | None, value: bytes | None, record=None) -> None:
        member, _, hit_id = (key or b"").decode(errors="replace").partition("/")
        if not member or not hit_id:
            return
        if not value:
            self._overrides.get(member, {}).pop(hit_id, None)
            return
        try:
            override = delivery_pb2.BoardOverride.FromString(value)
        except DecodeError:
            where = f" at offset {record.offset}" if record is not None else ""
            log.warning("undecodable board override%s skipped", where)
            return
        if override.member != member or override.hit_id != hit_id:
            log.warning("board override of %s/%s stored under another key skipped", override.member, override.hit_id)
            return
        self._overrides.setdefault(member, {})[hit_id] = override

    def get(self, member: str, hit_id: str) -> delivery_pb2.BoardOverride | None:
        return self._overrides.get(member, {}).get(hit_id)

    def of(self, member: str) -> list[delivery_pb2.BoardOverride]:
        """The member's overrides, newest first."""
        found = list(self._overrides.get(member, {}).values())
        found.sort(key=lambda o: (o.at.seconds, o.at.nanos, o.hit_id), reverse=True)
        return found


def check_reason(reason: str, *, required: bool) -> str | None:
    """What is wrong with an override's reason (None: nothing): 1 to REASON_MAX printable characters on one line
    (empty allowed when not ``required``)."""
    if not reason.strip():
        return "a reason is required (what the officer checked, in a few words)" if required else None
    if len(reason) > REASON_MAX:
        return f"the reason must be at most {REASON_MAX} characters"
    if not reason.isprintable():
        return "the reason must be one line of printable characters"
    return None


class BoardAdminServicer(delivery_pb2_grpc.BoardAdminServicer):
    """The BoardAdmin calls. ``delivery`` is the server's HitDelivery servicer: Override checks the hit against its
    delivery ledger (as Dispose does) and writes the audit event and the override through it; ``producer`` stores
    policy files (the server's ConfigProducer, shared with the other admin servicers, closed by the server)."""

    def __init__(
        self,
        settings: HubSettings,
        directory: Directory,
        delivery: HitDeliveryServicer,
        producer: ConfigProducer,
        *,
        gate: RecordsGate | None = None,
        parse_gate: ParseGate | None = None,
        policies: FollowedTable | None = None,
        overrides: FollowedTable | None = None,
    ):
        self._settings = settings
        self._directory = directory
        self._delivery = delivery
        self._producer = producer
        self._topics = topics = Topics(settings.topic_prefix)
        self._limits = PolicyLimits.from_settings(settings)
        self._gate = gate or RecordsGate()
        self._parse_gate = parse_gate or ParseGate(settings.rules_parse_concurrency)
        self._policy_table = RulesTable()  # key = owner, value = the YAML file's bytes: what RulesTable keeps
        self._policies = policies or FollowedTable(
            lambda: _reader(settings, topics.board_policies, self._policy_table.apply, "apihub-board-policies")
        )
        self._override_table = OverridesTable()
        self._overrides = overrides or FollowedTable(
            lambda: _reader(settings, topics.overrides, self._override_table.apply, "apihub-board-overrides")
        )
        # One override of a member at a time: the check of what stands and the write that follows go together.
        self._override_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _member_lock(self, member: str) -> threading.Lock:
        with self._locks_lock:  # one per member of the directory at most
            return self._override_locks.setdefault(member, threading.Lock())

    def _call(self, context: grpc.ServicerContext, member: str, *, needs_user: bool = False):
        return member_call(
            context, self._settings, self._directory, self._gate, member, needs_user=needs_user, what="board admin"
        )

    # -- LoadBoardPolicy -----------------------------------------------------------------------------------------

    def LoadBoardPolicy(
        self, request: delivery_pb2.BoardPolicyFile, context: grpc.ServicerContext
    ) -> delivery_pb2.LoadBoardPolicyResponse:
        caller = authorize_member_call(context, self._settings, self._directory, request.owner, needs_user=True)
        owner = caller.member
        try:
            with self._parse_gate.admit(owner):
                policy = parse_policy(request.yaml, f"board policy of {owner}", owner, self._limits)
        except ParseBusyError as exc:
            log.info("board policy of %s not checked: %s", owner, exc)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc).replace("rule file", "policy file"))
        except PolicyError as exc:
            log.info("board policy of %s rejected: %d problems", owner, len(exc.problems))
            return delivery_pb2.LoadBoardPolicyResponse(errors=list(exc.problems))
        # The trail first: it may hold a load whose storing then failed (answered UNAVAILABLE), never lacks one.
        self._delivery.record(context, audit_event("policy-loaded", owner, detail=policy.digest, user=caller.user))
        self._producer.store(context, self._topics.board_policies, owner, request.yaml.encode("utf-8"), "board policy")
        POLICIES_LOADED.inc()
        log.info("board policy of %s stored: digest %s", owner, policy.digest)
        return delivery_pb2.LoadBoardPolicyResponse(digest=policy.digest)

    # -- GetBoardPolicy ------------------------------------------------------------------------------------------

    def GetBoardPolicy(
        self, request: delivery_pb2.GetBoardPolicyRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.BoardPolicyFile:
        with self._call(context, request.member) as caller:
            with self._policies.current():
                data = self._policy_table.current(caller.member)
            yaml_text = data.decode("utf-8", errors="replace") if data else ""
            return delivery_pb2.BoardPolicyFile(owner=caller.member, yaml=yaml_text)

    # -- Override ------------------------------------------------------------------------------------------------

    def Override(
        self, request: delivery_pb2.OverrideRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.OverrideResponse:
        with self._call(context, request.member, needs_user=True) as caller:
            member, hit_id = caller.member, request.hit_id
            if not hit_id or len(hit_id) > HIT_ID_MAX:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hit_id is required (at most {HIT_ID_MAX} characters)")
            problem = check_reason(request.reason, required=not request.revoke)
            if problem:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            # NOT_FOUND for a hit the member never received, another member's included (no hint that it exists).
            self._delivery.delivered_to(context, member, hit_id)
            with self._member_lock(member):
                if request.revoke:
                    with self._overrides.current():
                        standing = self._override_table.get(member, hit_id)
                    if standing is None or standing.revoked:
                        context.abort(
                            grpc.StatusCode.FAILED_PRECONDITION, f"{member} has no standing override of hit {hit_id}"
                        )
                override = delivery_pb2.BoardOverride(
                    member=member,
                    hit_id=hit_id,
                    reason=request.reason.strip(),
                    user=caller.user,
                    revoked=request.revoke,
                )
                override.at.GetCurrentTime()
                action = "revoked" if request.revoke else "override"
                self._delivery.record(
                    context,
                    audit_event("overridden", member, hit_id=hit_id, detail=action, user=caller.user),
                    (self._topics.overrides, f"{member}/{hit_id}", override),
                )
            OVERRIDES.labels(member=member, action=action).inc()
            log.info(
                "member %s %s hit %s", member, "withdrew its override of" if request.revoke else "overrode", hit_id
            )
            return delivery_pb2.OverrideResponse(override=override)

    # -- ListOverrides -------------------------------------------------------------------------------------------

    def ListOverrides(
        self, request: delivery_pb2.ListOverridesRequest, context: grpc.ServicerContext
    ) -> delivery_pb2.ListOverridesResponse:
        with self._call(context, request.member) as caller:
            if len(request.hit_id) > HIT_ID_MAX:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hit_id must be at most {HIT_ID_MAX} characters")
            with self._overrides.current():
                if request.hit_id:
                    one = self._override_table.get(caller.member, request.hit_id)
                    found = [one] if one is not None else []
                else:
                    found = self._override_table.of(caller.member)[:OVERRIDES_MAX]
            return delivery_pb2.ListOverridesResponse(overrides=found)

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._policies.close()
        self._overrides.close()


def _reader(settings: HubSettings, topic: str, apply: Callable, client_id: str) -> TableReader:
    """A TableReader whose broker requests (the end offsets of each catch-up) give up within KAFKA_TIMEOUT_S."""
    consumer = make_consumer(
        settings,
        None,
        client_id,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000),
    )
    try:
        return TableReader(settings, topic, apply, client_id, consumer=consumer)
    except BaseException:
        consumer.close(autocommit=False)
        raise

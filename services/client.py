"""Client side of the hub's gRPC API, for `apihub submit`, `watchlist load`, `hits follow` and the demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import json_format

from services.api_ingest.status import answer_from_error
from services.auth import bearer
from services.codec import manifest_from_json
from services.config import HubSettings
from services.errors import HubError
from services.follow import Follower as Follower  # re-exported: following a member's hits lives in services.follow
from services.tls import ClientTLS
from services.userfiles import InputFileError, read_bytes

# The watchlist CSV reader is platform code (the member console reads uploads with it); re-exported here, where
# `apihub watchlist load`, `apihub screen`, the demo, the benchmarks and the tests have always found it.
from services.watchlist_csv import MAX_WATCHLIST_COLUMNS as MAX_WATCHLIST_COLUMNS
from services.watchlist_csv import WATCHLIST_COLUMNS as WATCHLIST_COLUMNS
from services.watchlist_csv import WatchlistFileError as WatchlistFileError
from services.watchlist_csv import read_watchlist_csv as read_watchlist_csv
from services.watchlist_csv import read_watchlist_file as read_watchlist_file
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2, intake_pb2_grpc, manifest_pb2


def channel(address: str, max_message_bytes: int = 16 * 1024 * 1024, tls: ClientTLS | None = None) -> grpc.Channel:
    """A channel to the hub: TLS (with a client certificate for mutual TLS) when ``tls`` is given, else plain."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(address, tls.credentials(), options=options)


def channel_for(settings: HubSettings, address: str) -> grpc.Channel:
    """A channel as the settings say (APIHUB_TLS_*): what every command and the launcher's clients use.
    Raises ConfigError for unusable TLS files."""
    return channel(address, settings.max_message_bytes, ClientTLS.from_settings(settings))


def submit(
    chan: grpc.Channel, token: str, manifests: list[manifest_pb2.Manifest], timeout: float = 30.0
) -> list[intake_pb2.Receipt]:
    """One receipt per manifest, in order: unary for one, the bulk stream for several.

    A rejected unary submission fails with INVALID_ARGUMENT; its receipt is unpacked from the status.
    """
    stub = intake_pb2_grpc.ManifestIntakeStub(chan)
    if len(manifests) == 1:
        try:
            return [stub.SubmitManifest(manifests[0], metadata=bearer(token), timeout=timeout)]
        except grpc.RpcError as exc:
            receipt = answer_from_error(exc, intake_pb2.Receipt)
            if receipt is None:
                raise
            return [receipt]
    return list(stub.SubmitManifests(iter(manifests), metadata=bearer(token), timeout=timeout))


def submit_paxlst(chan: grpc.Channel, token: str, data: bytes, timeout: float = 60.0) -> intake_pb2.PaxlstReceipts:
    """One PAXLST interchange; receipts per message (unpacked from the status when all were rejected)."""
    stub = intake_pb2_grpc.ManifestIntakeStub(chan)
    try:
        return stub.SubmitPaxlst(intake_pb2.PaxlstInterchange(data=data), metadata=bearer(token), timeout=timeout)
    except grpc.RpcError as exc:
        receipts = answer_from_error(exc, intake_pb2.PaxlstReceipts)
        if receipts is None:
            raise
        return receipts


# -- submitting files (`apihub submit`): each receipt as it arrives, and the files not acknowledged on a failure ----

# Most manifests of consecutive JSON files sent in one bulk stream: a longer run goes as several streams, so each
# call's deadline (APIHUB_SUBMIT_TIMEOUT_SECONDS) bounds a known amount of work.
STREAM_MANIFESTS = 500
# A call that failed with one of these left its files unacknowledged for a reason that passes (the hub or its broker
# unavailable, the connection lost, the deadline passed, a limit reached): send them again later (exit status 3).
# Any other failure (credentials, permission, a message too large) needs a fix first (exit status 2).
RETRY_LATER = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)


@dataclass(frozen=True)
class Answer:
    """One receipt of a submission: the file as given, and how the receipt names its message (the file; ``[n]``
    for the nth interchange of a file holding several; ``#i`` for the ith message of an interchange)."""

    file: str
    source: str
    receipt: intake_pb2.Receipt


class SubmitStoppedError(HubError):
    """A call of a submission failed: the receipts before it were answered; ``unacknowledged`` are the files (as
    given) with a message that got no receipt, which may or may not be stored. Sending them again is safe: a
    message already stored is answered DUPLICATE."""

    def __init__(self, code: grpc.StatusCode, details: str, unacknowledged: list[str]):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.unacknowledged = unacknowledged
        self.retriable = code in RETRY_LATER


@dataclass
class _Call:
    """One call of a submission: a run of JSON manifests (unary for one, the bulk stream for several) with the
    index of each one's file, one PAXLST interchange of a file, or a file's receipt made here (unreadable)."""

    files: list[int]
    manifests: list[manifest_pb2.Manifest] = field(default_factory=list)
    interchange: bytes | None = None
    source: str = ""
    local: intake_pb2.Receipt | None = None


def read_manifest_json(data: bytes) -> list[manifest_pb2.Manifest]:
    """A JSON file holds one manifest (an object) or several (an array), in the proto's JSON form."""
    parsed = json.loads(data)
    items = parsed if isinstance(parsed, list) else [parsed]
    return [manifest_from_json(json.dumps(item)) for item in items]


def unreadable_receipt(description: str) -> intake_pb2.Receipt:
    bad = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED)
    bad.errors.add(field="", code="unreadable", description=description)
    return bad


def paxlst_answers(answer: intake_pb2.PaxlstReceipts, source: str) -> list[tuple[str, intake_pb2.Receipt]]:
    """The receipts of one interchange, named source#i; one rejected receipt standing for an interchange that was
    refused as a whole; the interchange's own warnings (trailing data after UNZ, ...) shown with its first message."""
    if answer.errors:
        whole = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED)
        whole.errors.extend(answer.errors)
        whole.warnings.extend(answer.warnings)
        return [(source, whole), *((f"{source}#{i + 1}", r) for i, r in enumerate(answer.receipts))]
    if answer.warnings and answer.receipts:
        first = answer.receipts[0]
        own = list(first.warnings)
        del first.warnings[:]
        first.warnings.extend([*answer.warnings, *own])
    return [(f"{source}#{i + 1}", r) for i, r in enumerate(answer.receipts)]


class Submission:
    """Files submitted in the order given, one call at a time: ``answers()`` yields each receipt as it arrives and,
    when a call fails, raises SubmitStoppedError naming every file with a message not acknowledged (the failed
    call's, and those never sent). Files are read one by one as their turn comes."""

    def __init__(self, chan: grpc.Channel, token: str, files: list[str], timeout: float = 60.0):
        self._chan, self._token, self._timeout = chan, token, timeout
        self.files = files
        # Index of a file -> its messages (JSON) and interchanges (PAXLST) not answered yet; absent: not read yet.
        self._open: dict[int, int] = {}

    def unacknowledged(self) -> list[str]:
        return [name for i, name in enumerate(self.files) if self._open.get(i, 1) > 0]

    def answers(self) -> Iterator[Answer]:
        for call in self._calls():
            try:
                yield from self._run(call)
            except grpc.RpcError as exc:
                raise SubmitStoppedError(exc.code(), exc.details() or "", self.unacknowledged()) from None

    def _run(self, call: _Call) -> Iterator[Answer]:
        if call.local is not None:
            yield self._answered(call.files[0], call.source, call.local)
        elif call.interchange is not None:
            [index] = call.files
            reply = submit_paxlst(self._chan, self._token, call.interchange, self._timeout)
            for source, receipt in paxlst_answers(reply, call.source):
                yield Answer(self.files[index], source, receipt)
            self._open[index] -= 1
        else:
            got = 0
            for receipt in _receipts(self._chan, self._token, call.manifests, self._timeout):
                index = call.files[got]
                got += 1
                yield self._answered(index, self.files[index], receipt)
            if got < len(call.manifests):
                details = f"the hub ended the stream after {got} of {len(call.manifests)} receipts"
                raise SubmitStoppedError(grpc.StatusCode.ABORTED, details, self.unacknowledged())

    def _answered(self, index: int, source: str, receipt: intake_pb2.Receipt) -> Answer:
        self._open[index] -= 1
        return Answer(self.files[index], source, receipt)

    def _calls(self) -> Iterator[_Call]:
        from services.paxlst.files import looks_like_paxlst, split_interchanges

        run = _Call(files=[])
        for index, name in enumerate(self.files):
            local, interchanges, manifests = None, None, []
            try:
                data = read_bytes(name, "manifest file")
                if looks_like_paxlst(data):
                    interchanges = split_interchanges(data)
                else:
                    manifests = read_manifest_json(data)
            except InputFileError as exc:
                local = unreadable_receipt(exc.reason)
            except (ValueError, json_format.ParseError) as exc:
                local = unreadable_receipt(f"neither PAXLST nor a JSON manifest: {exc}")
            if local is not None or interchanges is not None:  # answered in the order given: the run goes first
                if run.manifests:
                    yield run
                run = _Call(files=[])
            if local is not None:
                self._open[index] = 1
                yield _Call(files=[index], source=name, local=local)
            elif interchanges is not None:
                self._open[index] = len(interchanges)
                for n, interchange in enumerate(interchanges):
                    source = name if len(interchanges) == 1 else f"{name}[{n + 1}]"
                    yield _Call(files=[index], interchange=interchange, source=source)
            else:
                self._open[index] = len(manifests)
                for manifest in manifests:
                    if len(run.manifests) == STREAM_MANIFESTS:
                        yield run
                        run = _Call(files=[])
                    run.files.append(index)
                    run.manifests.append(manifest)
        if run.manifests:
            yield run


def _receipts(
    chan: grpc.Channel, token: str, manifests: list[manifest_pb2.Manifest], timeout: float
) -> Iterator[intake_pb2.Receipt]:
    """submit(), the bulk stream's receipts yielded as they arrive."""
    if len(manifests) == 1:
        yield from submit(chan, token, manifests, timeout)
        return
    stub = intake_pb2_grpc.ManifestIntakeStub(chan)
    yield from stub.SubmitManifests(iter(manifests), metadata=bearer(token), timeout=timeout)


def load_watchlist(
    chan: grpc.Channel,
    token: str,
    owner: str,
    entries: list[delivery_pb2.WatchlistEntry],
    scope: int = delivery_pb2.WATCHLIST_SCOPE_REGIONAL,
    timeout: float = 30.0,
) -> delivery_pb2.LoadWatchlistResponse:
    stub = delivery_pb2_grpc.WatchlistAdminStub(chan)
    request = delivery_pb2.Watchlist(owner=owner, scope=scope, entries=entries)
    return stub.LoadWatchlist(request, metadata=bearer(token), timeout=timeout)


def dispose(
    chan: grpc.Channel, token: str, member: str, hit_id: str, outcome: int, note: str = "", timeout: float = 30.0
) -> delivery_pb2.DisposeResponse:
    stub = delivery_pb2_grpc.HitDeliveryStub(chan)
    request = delivery_pb2.DisposeRequest(member=member, hit_id=hit_id, outcome=outcome, note=note)
    return stub.Dispose(request, metadata=bearer(token), timeout=timeout)


def load_rules(chan: grpc.Channel, token: str, owner: str, yaml_text: str, timeout: float = 30.0):
    stub = delivery_pb2_grpc.RulesAdminStub(chan)
    return stub.LoadRules(delivery_pb2.RuleFile(owner=owner, yaml=yaml_text), metadata=bearer(token), timeout=timeout)


def load_board_policy(
    chan: grpc.Channel, token: str, owner: str, yaml_text: str, timeout: float = 30.0
) -> delivery_pb2.LoadBoardPolicyResponse:
    """Replace the member's board policy (interactive checks); the answer's ``errors`` name lines it refused."""
    stub = delivery_pb2_grpc.BoardAdminStub(chan)
    request = delivery_pb2.BoardPolicyFile(owner=owner, yaml=yaml_text)
    return stub.LoadBoardPolicy(request, metadata=bearer(token), timeout=timeout)


def board_policy(chan: grpc.Channel, token: str, member: str, timeout: float = 30.0) -> str:
    """The member's board policy file as the hub holds it ("" when it has none)."""
    stub = delivery_pb2_grpc.BoardAdminStub(chan)
    request = delivery_pb2.GetBoardPolicyRequest(member=member)
    return stub.GetBoardPolicy(request, metadata=bearer(token), timeout=timeout).yaml


def override(
    chan: grpc.Channel,
    token: str,
    member: str,
    hit_id: str,
    reason: str = "",
    revoke: bool = False,
    timeout: float = 30.0,
) -> delivery_pb2.BoardOverride:
    """Let the traveller of a hit the member received board despite its board policy (``revoke``: withdraw that)."""
    stub = delivery_pb2_grpc.BoardAdminStub(chan)
    request = delivery_pb2.OverrideRequest(member=member, hit_id=hit_id, reason=reason, revoke=revoke)
    return stub.Override(request, metadata=bearer(token), timeout=timeout).override


def overrides(
    chan: grpc.Channel, token: str, member: str, hit_id: str = "", timeout: float = 30.0
) -> list[delivery_pb2.BoardOverride]:
    """The member's board overrides (of one hit when ``hit_id``), revoked ones included, newest first."""
    stub = delivery_pb2_grpc.BoardAdminStub(chan)
    request = delivery_pb2.ListOverridesRequest(member=member, hit_id=hit_id)
    return list(stub.ListOverrides(request, metadata=bearer(token), timeout=timeout).overrides)


# -- interactive checks (`apihub check`): one directive per traveller ------------------------------------------------


@dataclass(frozen=True)
class CheckedFile:
    """The answers to one file of `apihub check`: a CheckResponse per message (JSON: one per manifest), the
    CUSRES bytes for a PAXLST interchange, and the file's own problems."""

    file: str
    checks: list = field(default_factory=list)
    cusres: bytes = b""
    errors: list = field(default_factory=list)


def check_travellers(chan: grpc.Channel, token: str, manifest: manifest_pb2.Manifest, timeout: float = 10.0):
    """One check (CheckResponse): the manifest names the flight and the travellers at check-in."""
    from services.wire import check_pb2, check_pb2_grpc

    stub = check_pb2_grpc.InteractiveCheckStub(chan)
    return stub.CheckTravellers(check_pb2.CheckRequest(manifest=manifest), metadata=bearer(token), timeout=timeout)


def check_paxlst(chan: grpc.Channel, token: str, data: bytes, timeout: float = 10.0):
    """An iAPI PAXLST interchange checked: PaxlstCheckResponse (CheckResponses and the CUSRES answer)."""
    from services.wire import check_pb2_grpc

    stub = check_pb2_grpc.InteractiveCheckStub(chan)
    return stub.CheckPaxlst(intake_pb2.PaxlstInterchange(data=data), metadata=bearer(token), timeout=timeout)


def check_file(chan: grpc.Channel, token: str, path: str, max_bytes: int, timeout: float = 10.0) -> CheckedFile:
    """Check the travellers of one file: a PAXLST interchange (the content starts with UNA or UNB) or the JSON form
    of one manifest or several. gRPC errors propagate; an unreadable file is answered in ``errors``."""
    try:
        data = read_bytes(path, "check file", max_bytes, "APIHUB_MAX_MESSAGE_BYTES")
    except InputFileError as exc:
        return CheckedFile(path, errors=[str(exc)])
    head = data.lstrip()[:3]
    if head in (b"UNA", b"UNB"):
        answer = check_paxlst(chan, token, data, timeout)
        problems = [f"{v.segment or v.field}: {v.description}" for v in answer.errors]
        return CheckedFile(path, list(answer.checks), answer.cusres, problems)
    try:
        manifests = read_manifest_json(data)
    except (ValueError, json_format.ParseError) as exc:
        return CheckedFile(path, errors=[f"neither PAXLST nor the JSON form of apihub.v1.Manifest: {exc}"])
    return CheckedFile(path, [check_travellers(chan, token, m, timeout) for m in manifests])

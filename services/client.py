"""Client side of the hub's gRPC API, for `apihub submit`, `watchlist load`, `hits follow` and the demo."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from services.api_ingest.status import answer_from_error
from services.auth import bearer
from services.codec import parse_partial_date
from services.config import HubSettings
from services.tls import ClientTLS
from services.wire import delivery_pb2, delivery_pb2_grpc, intake_pb2, intake_pb2_grpc, manifest_pb2

WATCHLIST_COLUMNS = [
    "entry_id",
    "surname",
    "given_names",
    "date_of_birth",
    "sex",
    "nationality",
    "document_number",
    "document_issuer",
    "category",
    "owner",
]
_SEX = {
    "": manifest_pb2.SEX_UNSPECIFIED,
    "M": manifest_pb2.SEX_MALE,
    "F": manifest_pb2.SEX_FEMALE,
    "X": manifest_pb2.SEX_X,
}


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


class WatchlistFileError(ValueError):
    """A watchlist CSV problem, naming the line and column."""


def read_watchlist_csv(text: str, owner: str | None) -> list[delivery_pb2.WatchlistEntry]:
    """Entries of a watchlist CSV. With ``owner`` every row must be that member's (or leave owner empty);
    without, each row names its owner (offline screening of several members' lists)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in WATCHLIST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise WatchlistFileError(f"line 1: header lacks columns {missing}; expected {','.join(WATCHLIST_COLUMNS)}")
    entries = []
    for row in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in row.items() if k}
        try:
            dob = parse_partial_date(row["date_of_birth"])
        except ValueError as exc:
            raise WatchlistFileError(f"line {line}, date_of_birth: {exc}") from None
        sex = row["sex"].upper()
        if sex not in _SEX:
            raise WatchlistFileError(f"line {line}, sex: must be M, F, X or empty")
        entry_owner = row["owner"].upper() or owner
        if owner is None and not entry_owner:
            raise WatchlistFileError(f"line {line}, owner: required (the member whose entry this is)")
        if owner is not None and entry_owner != owner:
            raise WatchlistFileError(f"line {line}, owner: '{row['owner']}' differs from --member {owner}")
        entries.append(
            delivery_pb2.WatchlistEntry(
                entry_id=row["entry_id"],
                surname=row["surname"],
                given_names=row["given_names"],
                date_of_birth=dob,
                sex=_SEX[sex],
                nationality=row["nationality"].upper(),
                document_number=row["document_number"],
                document_issuer=row["document_issuer"].upper(),
                category=row["category"],
                owner=entry_owner,
            )
        )
    return entries


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


@dataclass
class Follower:
    """Streams one member's hits, acknowledging each after the handler returns."""

    chan: grpc.Channel
    token: str
    member: str
    ack: bool = True

    def follow(
        self,
        handle: Callable[[delivery_pb2.Delivery], None],
        idle_exit: float | None = None,
        cursor: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Call ``handle`` for each hit; return how many. Ends after ``idle_exit`` seconds without a hit."""
        stub = delivery_pb2_grpc.HitDeliveryStub(self.chan)
        request = delivery_pb2.SubscribeRequest(member=self.member)
        if cursor is not None:
            request.cursor = cursor
        call = stub.Subscribe(request, metadata=bearer(self.token))
        count, last = 0, time.monotonic()
        try:
            for delivery in _stream(call):
                if not delivery.heartbeat:
                    handle(delivery)
                    count += 1
                    last = time.monotonic()
                    if self.ack:
                        delivery_pb2_grpc.HitDeliveryStub(self.chan).Ack(
                            delivery_pb2.AckRequest(member=self.member, cursor=delivery.cursor),
                            metadata=bearer(self.token),
                            timeout=10,
                        )
                if should_stop() or (idle_exit is not None and time.monotonic() - last >= idle_exit):
                    break
        finally:
            call.cancel()
        return count


def _stream(call) -> Iterator[delivery_pb2.Delivery]:
    try:
        yield from call
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            raise


def dispose(
    chan: grpc.Channel, token: str, member: str, hit_id: str, outcome: int, note: str = "", timeout: float = 30.0
) -> delivery_pb2.DisposeResponse:
    stub = delivery_pb2_grpc.HitDeliveryStub(chan)
    request = delivery_pb2.DisposeRequest(member=member, hit_id=hit_id, outcome=outcome, note=note)
    return stub.Dispose(request, metadata=bearer(token), timeout=timeout)


def load_rules(chan: grpc.Channel, token: str, owner: str, yaml_text: str, timeout: float = 30.0):
    stub = delivery_pb2_grpc.RulesAdminStub(chan)
    return stub.LoadRules(delivery_pb2.RuleFile(owner=owner, yaml=yaml_text), metadata=bearer(token), timeout=timeout)

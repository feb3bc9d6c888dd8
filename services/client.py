"""Client side of the hub's gRPC API, for `apihub submit`, `watchlist load`, `hits follow` and the demo."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.api_ingest.status import answer_from_error
from services.auth import bearer
from services.codec import parse_partial_date
from services.config import HubSettings
from services.tls import ClientTLS
from services.userfiles import ENCODING_HINT, InputFileError, read_text
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


# Most columns a watchlist CSV's header may have: WATCHLIST_COLUMNS and a few of the member's own, ignored.
MAX_WATCHLIST_COLUMNS = 64
# Control characters (C0, DEL, C1) have no place in a watchlist: refused, never stored or screened.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def read_watchlist_file(
    path: str | Path, owner: str | None, max_bytes: int, encoding: str | None = None
) -> list[delivery_pb2.WatchlistEntry]:
    """read_watchlist_csv of a file: at most ``max_bytes`` (APIHUB_WATCHLIST_FILE_MAX_BYTES) read, decoded as
    userfiles.decode_text does (UTF-8, UTF-16 with a byte order mark, or ``encoding``). Every problem, the file's
    own included (missing, a directory, too large, undecodable), is a WatchlistFileError naming the line."""
    try:
        text = read_text(path, "watchlist", max_bytes, encoding, "APIHUB_WATCHLIST_FILE_MAX_BYTES", hint=ENCODING_HINT)
    except InputFileError as exc:
        raise WatchlistFileError(exc.reason) from None
    return read_watchlist_csv(text, owner)


def read_watchlist_csv(text: str, owner: str | None) -> list[delivery_pb2.WatchlistEntry]:
    """Entries of a watchlist CSV. With ``owner`` every row must be that member's (or leave owner empty);
    without, each row names its owner (offline screening of several members' lists)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    entries = []
    done = 0  # the last line of the rows read so far: a row that fails to parse starts on the next one
    try:
        header = reader.fieldnames or []
        if len(header) > MAX_WATCHLIST_COLUMNS:
            raise WatchlistFileError(f"line 1: header has {len(header)} columns, at most {MAX_WATCHLIST_COLUMNS}")
        missing = [c for c in WATCHLIST_COLUMNS if c not in header]
        if missing:
            raise WatchlistFileError(f"line 1: header lacks columns {missing}; expected {','.join(WATCHLIST_COLUMNS)}")
        done = reader.line_num
        for row in reader:
            entries.append(_watchlist_entry(row, reader.line_num, len(header), owner))
            done = reader.line_num
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit (128 KiB)
        raise WatchlistFileError(f"line {done + 1}: not a readable CSV row: {exc}") from None
    return entries


def _watchlist_entry(row: dict, line: int, columns: int, owner: str | None) -> delivery_pb2.WatchlistEntry:
    extra = row.get(None)  # DictReader's restkey: the fields beyond the header's
    if extra:
        raise WatchlistFileError(f"line {line}: {columns + len(extra)} fields, the header has {columns}")
    row = {k: (v or "").strip() for k, v in row.items() if k}
    for column in WATCHLIST_COLUMNS:
        bad = _CONTROL.search(row[column])
        if bad:  # never echo the value: it may be a name or a document number
            code = ord(bad.group())
            why = " (a cp1252 file read as latin-1? try --encoding cp1252)" if 0x80 <= code <= 0x9F else ""
            raise WatchlistFileError(f"line {line}, {column}: control character U+{code:04X}{why}")
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
    return delivery_pb2.WatchlistEntry(
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

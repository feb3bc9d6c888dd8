import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.wire.apihub.v1 import hit_pb2 as _hit_pb2
from services.wire.apihub.v1 import intake_pb2 as _intake_pb2
from services.wire.apihub.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_TRUE_MATCH: _ClassVar[Outcome]
    OUTCOME_FALSE_POSITIVE: _ClassVar[Outcome]
    OUTCOME_DENIED_BOARDING: _ClassVar[Outcome]
    OUTCOME_REFUSED_ENTRY: _ClassVar[Outcome]
    OUTCOME_SECONDARY_POSITIVE: _ClassVar[Outcome]
    OUTCOME_SECONDARY_NEGATIVE: _ClassVar[Outcome]

class WatchlistScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCHLIST_SCOPE_UNSPECIFIED: _ClassVar[WatchlistScope]
    WATCHLIST_SCOPE_REGIONAL: _ClassVar[WatchlistScope]
    WATCHLIST_SCOPE_PRIVATE: _ClassVar[WatchlistScope]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_TRUE_MATCH: Outcome
OUTCOME_FALSE_POSITIVE: Outcome
OUTCOME_DENIED_BOARDING: Outcome
OUTCOME_REFUSED_ENTRY: Outcome
OUTCOME_SECONDARY_POSITIVE: Outcome
OUTCOME_SECONDARY_NEGATIVE: Outcome
WATCHLIST_SCOPE_UNSPECIFIED: WatchlistScope
WATCHLIST_SCOPE_REGIONAL: WatchlistScope
WATCHLIST_SCOPE_PRIVATE: WatchlistScope

class SubscribeRequest(_message.Message):
    __slots__ = ("member", "cursor", "reader")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    member: str
    cursor: int
    reader: str
    def __init__(self, member: _Optional[str] = ..., cursor: _Optional[int] = ..., reader: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("cursor", "hit", "heartbeat")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    HIT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    hit: _hit_pb2.Hit
    heartbeat: bool
    def __init__(self, cursor: _Optional[int] = ..., hit: _Optional[_Union[_hit_pb2.Hit, _Mapping]] = ..., heartbeat: _Optional[bool] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("member", "cursor", "reader")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    member: str
    cursor: int
    reader: str
    def __init__(self, member: _Optional[str] = ..., cursor: _Optional[int] = ..., reader: _Optional[str] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("next_cursor",)
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    next_cursor: int
    def __init__(self, next_cursor: _Optional[int] = ...) -> None: ...

class DisposeRequest(_message.Message):
    __slots__ = ("member", "hit_id", "outcome", "note")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    outcome: Outcome
    note: str
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Disposition(_message.Message):
    __slots__ = ("hit_id", "member", "outcome", "note", "at", "reason_keys", "user")
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_KEYS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    member: str
    outcome: Outcome
    note: str
    at: _timestamp_pb2.Timestamp
    reason_keys: _containers.RepeatedScalarFieldContainer[str]
    user: str
    def __init__(self, hit_id: _Optional[str] = ..., member: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., note: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason_keys: _Optional[_Iterable[str]] = ..., user: _Optional[str] = ...) -> None: ...

class DisposeResponse(_message.Message):
    __slots__ = ("disposition",)
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    disposition: Disposition
    def __init__(self, disposition: _Optional[_Union[Disposition, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("event", "member", "hit_id", "cursor", "at", "detail", "user")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    event: str
    member: str
    hit_id: str
    cursor: int
    at: _timestamp_pb2.Timestamp
    detail: str
    user: str
    def __init__(self, event: _Optional[str] = ..., member: _Optional[str] = ..., hit_id: _Optional[str] = ..., cursor: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., user: _Optional[str] = ...) -> None: ...

class AuditSeal(_message.Message):
    __slots__ = ("partition", "through_offset", "chain_sha256", "genesis_offset", "log_start_offset", "key_id", "hmac_sha256", "at", "sealer")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    THROUGH_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CHAIN_SHA256_FIELD_NUMBER: _ClassVar[int]
    GENESIS_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOG_START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HMAC_SHA256_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SEALER_FIELD_NUMBER: _ClassVar[int]
    partition: int
    through_offset: int
    chain_sha256: bytes
    genesis_offset: int
    log_start_offset: int
    key_id: str
    hmac_sha256: bytes
    at: _timestamp_pb2.Timestamp
    sealer: str
    def __init__(self, partition: _Optional[int] = ..., through_offset: _Optional[int] = ..., chain_sha256: _Optional[bytes] = ..., genesis_offset: _Optional[int] = ..., log_start_offset: _Optional[int] = ..., key_id: _Optional[str] = ..., hmac_sha256: _Optional[bytes] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sealer: _Optional[str] = ...) -> None: ...

class WatchlistEntry(_message.Message):
    __slots__ = ("entry_id", "surname", "given_names", "date_of_birth", "sex", "nationality", "document_number", "document_issuer", "category", "owner")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SURNAME_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ISSUER_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    surname: str
    given_names: str
    date_of_birth: _manifest_pb2.PartialDate
    sex: _manifest_pb2.Sex
    nationality: str
    document_number: str
    document_issuer: str
    category: str
    owner: str
    def __init__(self, entry_id: _Optional[str] = ..., surname: _Optional[str] = ..., given_names: _Optional[str] = ..., date_of_birth: _Optional[_Union[_manifest_pb2.PartialDate, _Mapping]] = ..., sex: _Optional[_Union[_manifest_pb2.Sex, str]] = ..., nationality: _Optional[str] = ..., document_number: _Optional[str] = ..., document_issuer: _Optional[str] = ..., category: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class Watchlist(_message.Message):
    __slots__ = ("owner", "scope", "entries", "loaded_at")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    owner: str
    scope: WatchlistScope
    entries: _containers.RepeatedCompositeFieldContainer[WatchlistEntry]
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, owner: _Optional[str] = ..., scope: _Optional[_Union[WatchlistScope, str]] = ..., entries: _Optional[_Iterable[_Union[WatchlistEntry, _Mapping]]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoadWatchlistResponse(_message.Message):
    __slots__ = ("entries", "errors")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    entries: int
    errors: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    def __init__(self, entries: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ...) -> None: ...

class RuleFile(_message.Message):
    __slots__ = ("owner", "yaml")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    owner: str
    yaml: str
    def __init__(self, owner: _Optional[str] = ..., yaml: _Optional[str] = ...) -> None: ...

class LoadRulesResponse(_message.Message):
    __slots__ = ("rules", "errors", "digest")
    RULES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    rules: int
    errors: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    digest: str
    def __init__(self, rules: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ..., digest: _Optional[str] = ...) -> None: ...

class ListWatchlistRequest(_message.Message):
    __slots__ = ("member", "query", "offset", "limit")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    member: str
    query: str
    offset: int
    limit: int
    def __init__(self, member: _Optional[str] = ..., query: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListWatchlistResponse(_message.Message):
    __slots__ = ("entries", "total", "list_size", "scope", "loaded_at")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[WatchlistEntry]
    total: int
    list_size: int
    scope: WatchlistScope
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, entries: _Optional[_Iterable[_Union[WatchlistEntry, _Mapping]]] = ..., total: _Optional[int] = ..., list_size: _Optional[int] = ..., scope: _Optional[_Union[WatchlistScope, str]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditTrailRequest(_message.Message):
    __slots__ = ("member", "before_offset", "limit")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    BEFORE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    member: str
    before_offset: int
    limit: int
    def __init__(self, member: _Optional[str] = ..., before_offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("offset", "event")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    offset: int
    event: AuditEvent
    def __init__(self, offset: _Optional[int] = ..., event: _Optional[_Union[AuditEvent, _Mapping]] = ...) -> None: ...

class AuditTrailResponse(_message.Message):
    __slots__ = ("records", "next_before_offset")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    next_before_offset: int
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ..., next_before_offset: _Optional[int] = ...) -> None: ...

class ListDispositionsRequest(_message.Message):
    __slots__ = ("member", "limit")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    member: str
    limit: int
    def __init__(self, member: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDispositionsResponse(_message.Message):
    __slots__ = ("dispositions", "total")
    DISPOSITIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    dispositions: _containers.RepeatedCompositeFieldContainer[Disposition]
    total: int
    def __init__(self, dispositions: _Optional[_Iterable[_Union[Disposition, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class PrecisionRequest(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: str
    def __init__(self, member: _Optional[str] = ...) -> None: ...

class ReasonPrecision(_message.Message):
    __slots__ = ("reason", "confirmed", "refuted")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    REFUTED_FIELD_NUMBER: _ClassVar[int]
    reason: str
    confirmed: int
    refuted: int
    def __init__(self, reason: _Optional[str] = ..., confirmed: _Optional[int] = ..., refuted: _Optional[int] = ...) -> None: ...

class PrecisionResponse(_message.Message):
    __slots__ = ("reasons",)
    REASONS_FIELD_NUMBER: _ClassVar[int]
    reasons: _containers.RepeatedCompositeFieldContainer[ReasonPrecision]
    def __init__(self, reasons: _Optional[_Iterable[_Union[ReasonPrecision, _Mapping]]] = ...) -> None: ...

class OutboxLagRequest(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: str
    def __init__(self, member: _Optional[str] = ...) -> None: ...

class ReaderLag(_message.Message):
    __slots__ = ("reader", "webhook", "next_cursor", "pending")
    READER_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    reader: str
    webhook: bool
    next_cursor: int
    pending: int
    def __init__(self, reader: _Optional[str] = ..., webhook: _Optional[bool] = ..., next_cursor: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class OutboxLagResponse(_message.Message):
    __slots__ = ("oldest_cursor", "end_cursor", "readers")
    OLDEST_CURSOR_FIELD_NUMBER: _ClassVar[int]
    END_CURSOR_FIELD_NUMBER: _ClassVar[int]
    READERS_FIELD_NUMBER: _ClassVar[int]
    oldest_cursor: int
    end_cursor: int
    readers: _containers.RepeatedCompositeFieldContainer[ReaderLag]
    def __init__(self, oldest_cursor: _Optional[int] = ..., end_cursor: _Optional[int] = ..., readers: _Optional[_Iterable[_Union[ReaderLag, _Mapping]]] = ...) -> None: ...

class RecordViewRequest(_message.Message):
    __slots__ = ("member", "hit_id", "cursor")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    cursor: int
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ..., cursor: _Optional[int] = ...) -> None: ...

class RecordViewResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    def __init__(self, event: _Optional[_Union[AuditEvent, _Mapping]] = ...) -> None: ...

class GetRulesRequest(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: str
    def __init__(self, member: _Optional[str] = ...) -> None: ...

class GetRulesResponse(_message.Message):
    __slots__ = ("yaml", "present", "digest")
    YAML_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    present: bool
    digest: str
    def __init__(self, yaml: _Optional[str] = ..., present: _Optional[bool] = ..., digest: _Optional[str] = ...) -> None: ...

class RecordTakeRequest(_message.Message):
    __slots__ = ("member", "hit_id", "cursor")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    cursor: int
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ..., cursor: _Optional[int] = ...) -> None: ...

class RecordTakeResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    def __init__(self, event: _Optional[_Union[AuditEvent, _Mapping]] = ...) -> None: ...

class BoardPolicyFile(_message.Message):
    __slots__ = ("owner", "yaml")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    owner: str
    yaml: str
    def __init__(self, owner: _Optional[str] = ..., yaml: _Optional[str] = ...) -> None: ...

class LoadBoardPolicyResponse(_message.Message):
    __slots__ = ("errors", "digest")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    digest: str
    def __init__(self, errors: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ..., digest: _Optional[str] = ...) -> None: ...

class GetBoardPolicyRequest(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: str
    def __init__(self, member: _Optional[str] = ...) -> None: ...

class BoardOverride(_message.Message):
    __slots__ = ("member", "hit_id", "reason", "user", "at", "revoked")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    reason: str
    user: str
    at: _timestamp_pb2.Timestamp
    revoked: bool
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ..., reason: _Optional[str] = ..., user: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked: _Optional[bool] = ...) -> None: ...

class OverrideRequest(_message.Message):
    __slots__ = ("member", "hit_id", "reason", "revoke")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKE_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    reason: str
    revoke: bool
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ..., reason: _Optional[str] = ..., revoke: _Optional[bool] = ...) -> None: ...

class OverrideResponse(_message.Message):
    __slots__ = ("override",)
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    override: BoardOverride
    def __init__(self, override: _Optional[_Union[BoardOverride, _Mapping]] = ...) -> None: ...

class ListOverridesRequest(_message.Message):
    __slots__ = ("member", "hit_id")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    member: str
    hit_id: str
    def __init__(self, member: _Optional[str] = ..., hit_id: _Optional[str] = ...) -> None: ...

class ListOverridesResponse(_message.Message):
    __slots__ = ("overrides",)
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    overrides: _containers.RepeatedCompositeFieldContainer[BoardOverride]
    def __init__(self, overrides: _Optional[_Iterable[_Union[BoardOverride, _Mapping]]] = ...) -> None: ...

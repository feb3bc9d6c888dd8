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
    __slots__ = ("hit_id", "member", "outcome", "note", "at", "reason_keys")
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_KEYS_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    member: str
    outcome: Outcome
    note: str
    at: _timestamp_pb2.Timestamp
    reason_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hit_id: _Optional[str] = ..., member: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., note: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class DisposeResponse(_message.Message):
    __slots__ = ("disposition",)
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    disposition: Disposition
    def __init__(self, disposition: _Optional[_Union[Disposition, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("event", "member", "hit_id", "cursor", "at", "detail")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event: str
    member: str
    hit_id: str
    cursor: int
    at: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, event: _Optional[str] = ..., member: _Optional[str] = ..., hit_id: _Optional[str] = ..., cursor: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

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

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.wire.apihub.v1 import check_pb2 as _check_pb2
from services.wire.apihub.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReasonSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_SOURCE_UNSPECIFIED: _ClassVar[ReasonSource]
    REASON_SOURCE_RULE: _ClassVar[ReasonSource]
    REASON_SOURCE_WATCHLIST: _ClassVar[ReasonSource]
    REASON_SOURCE_MODEL: _ClassVar[ReasonSource]

class ScreeningBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCREENING_BAND_UNSPECIFIED: _ClassVar[ScreeningBand]
    SCREENING_BAND_ALERT: _ClassVar[ScreeningBand]
    SCREENING_BAND_REVIEW: _ClassVar[ScreeningBand]

class HitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HIT_STATE_UNSPECIFIED: _ClassVar[HitState]
    HIT_STATE_ACTIVE: _ClassVar[HitState]
    HIT_STATE_WITHDRAWN: _ClassVar[HitState]
REASON_SOURCE_UNSPECIFIED: ReasonSource
REASON_SOURCE_RULE: ReasonSource
REASON_SOURCE_WATCHLIST: ReasonSource
REASON_SOURCE_MODEL: ReasonSource
SCREENING_BAND_UNSPECIFIED: ScreeningBand
SCREENING_BAND_ALERT: ScreeningBand
SCREENING_BAND_REVIEW: ScreeningBand
HIT_STATE_UNSPECIFIED: HitState
HIT_STATE_ACTIVE: HitState
HIT_STATE_WITHDRAWN: HitState

class Reason(_message.Message):
    __slots__ = ("source", "id", "score", "explanation", "owner", "category", "band", "document_match")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_MATCH_FIELD_NUMBER: _ClassVar[int]
    source: ReasonSource
    id: str
    score: float
    explanation: str
    owner: str
    category: str
    band: ScreeningBand
    document_match: bool
    def __init__(self, source: _Optional[_Union[ReasonSource, str]] = ..., id: _Optional[str] = ..., score: _Optional[float] = ..., explanation: _Optional[str] = ..., owner: _Optional[str] = ..., category: _Optional[str] = ..., band: _Optional[_Union[ScreeningBand, str]] = ..., document_match: _Optional[bool] = ...) -> None: ...

class FlightRef(_message.Message):
    __slots__ = ("carrier", "number", "departure", "origin", "destination", "route")
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    carrier: str
    number: str
    departure: _timestamp_pb2.Timestamp
    origin: str
    destination: str
    route: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, carrier: _Optional[str] = ..., number: _Optional[str] = ..., departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[str] = ..., destination: _Optional[str] = ..., route: _Optional[_Iterable[str]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("hit_id", "recipient", "manifest_id", "flight", "traveller", "score", "reasons", "raised_at", "state", "manifest_received_at", "withdrawn_hit_ids", "whole_flight", "for_review", "version", "interactive", "directives")
    class DirectivesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _check_pb2.Directive
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_check_pb2.Directive, str]] = ...) -> None: ...
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_FIELD_NUMBER: _ClassVar[int]
    TRAVELLER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_HIT_IDS_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    FOR_REVIEW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVES_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    recipient: str
    manifest_id: str
    flight: FlightRef
    traveller: _manifest_pb2.Traveller
    score: float
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    raised_at: _timestamp_pb2.Timestamp
    state: HitState
    manifest_received_at: _timestamp_pb2.Timestamp
    withdrawn_hit_ids: _containers.RepeatedScalarFieldContainer[str]
    whole_flight: bool
    for_review: bool
    version: int
    interactive: bool
    directives: _containers.ScalarMap[str, _check_pb2.Directive]
    def __init__(self, hit_id: _Optional[str] = ..., recipient: _Optional[str] = ..., manifest_id: _Optional[str] = ..., flight: _Optional[_Union[FlightRef, _Mapping]] = ..., traveller: _Optional[_Union[_manifest_pb2.Traveller, _Mapping]] = ..., score: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[HitState, str]] = ..., manifest_received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., withdrawn_hit_ids: _Optional[_Iterable[str]] = ..., whole_flight: _Optional[bool] = ..., for_review: _Optional[bool] = ..., version: _Optional[int] = ..., interactive: _Optional[bool] = ..., directives: _Optional[_Mapping[str, _check_pb2.Directive]] = ...) -> None: ...

class DeliveryRecord(_message.Message):
    __slots__ = ("hit_id", "flight_key", "fingerprints", "withdrawn", "passenger_ref", "reason_keys", "version")
    class FingerprintsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_KEY_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINTS_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    PASSENGER_REF_FIELD_NUMBER: _ClassVar[int]
    REASON_KEYS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    flight_key: str
    fingerprints: _containers.ScalarMap[str, str]
    withdrawn: bool
    passenger_ref: str
    reason_keys: _containers.RepeatedScalarFieldContainer[str]
    version: int
    def __init__(self, hit_id: _Optional[str] = ..., flight_key: _Optional[str] = ..., fingerprints: _Optional[_Mapping[str, str]] = ..., withdrawn: _Optional[bool] = ..., passenger_ref: _Optional[str] = ..., reason_keys: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ...) -> None: ...

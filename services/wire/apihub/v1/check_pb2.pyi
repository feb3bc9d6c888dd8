import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.wire.apihub.v1 import intake_pb2 as _intake_pb2
from services.wire.apihub.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Directive(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTIVE_UNSPECIFIED: _ClassVar[Directive]
    DIRECTIVE_OK_TO_BOARD: _ClassVar[Directive]
    DIRECTIVE_DO_NOT_BOARD: _ClassVar[Directive]
    DIRECTIVE_CONTACT_AUTHORITY: _ClassVar[Directive]
    DIRECTIVE_INSUFFICIENT_DATA: _ClassVar[Directive]
DIRECTIVE_UNSPECIFIED: Directive
DIRECTIVE_OK_TO_BOARD: Directive
DIRECTIVE_DO_NOT_BOARD: Directive
DIRECTIVE_CONTACT_AUTHORITY: Directive
DIRECTIVE_INSUFFICIENT_DATA: Directive

class CheckRequest(_message.Message):
    __slots__ = ("manifest",)
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    manifest: _manifest_pb2.Manifest
    def __init__(self, manifest: _Optional[_Union[_manifest_pb2.Manifest, _Mapping]] = ...) -> None: ...

class TravellerAnswer(_message.Message):
    __slots__ = ("index", "passenger_ref", "reservation_locator", "directive", "missing_fields", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PASSENGER_REF_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_LOCATOR_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    passenger_ref: str
    reservation_locator: str
    directive: Directive
    missing_fields: _containers.RepeatedScalarFieldContainer[str]
    message: str
    def __init__(self, index: _Optional[int] = ..., passenger_ref: _Optional[str] = ..., reservation_locator: _Optional[str] = ..., directive: _Optional[_Union[Directive, str]] = ..., missing_fields: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("check_id", "answers", "errors", "warnings", "fallback", "answered_at")
    CHECK_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    check_id: str
    answers: _containers.RepeatedCompositeFieldContainer[TravellerAnswer]
    errors: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    warnings: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    fallback: bool
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, check_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[TravellerAnswer, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ..., fallback: _Optional[bool] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PaxlstCheckResponse(_message.Message):
    __slots__ = ("cusres", "checks", "errors", "warnings")
    CUSRES_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    cusres: bytes
    checks: _containers.RepeatedCompositeFieldContainer[CheckResponse]
    errors: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    warnings: _containers.RepeatedCompositeFieldContainer[_intake_pb2.FieldViolation]
    def __init__(self, cusres: _Optional[bytes] = ..., checks: _Optional[_Iterable[_Union[CheckResponse, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[_intake_pb2.FieldViolation, _Mapping]]] = ...) -> None: ...

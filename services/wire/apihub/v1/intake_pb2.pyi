from services.wire.apihub.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReceiptStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIPT_STATUS_UNSPECIFIED: _ClassVar[ReceiptStatus]
    RECEIPT_STATUS_ACCEPTED: _ClassVar[ReceiptStatus]
    RECEIPT_STATUS_DUPLICATE: _ClassVar[ReceiptStatus]
    RECEIPT_STATUS_REJECTED: _ClassVar[ReceiptStatus]
RECEIPT_STATUS_UNSPECIFIED: ReceiptStatus
RECEIPT_STATUS_ACCEPTED: ReceiptStatus
RECEIPT_STATUS_DUPLICATE: ReceiptStatus
RECEIPT_STATUS_REJECTED: ReceiptStatus

class FieldViolation(_message.Message):
    __slots__ = ("field", "code", "description", "segment")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    field: str
    code: str
    description: str
    segment: str
    def __init__(self, field: _Optional[str] = ..., code: _Optional[str] = ..., description: _Optional[str] = ..., segment: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("status", "manifest_id", "passengers", "crew", "errors", "warnings", "message_ref", "revision")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    PASSENGERS_FIELD_NUMBER: _ClassVar[int]
    CREW_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REF_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    status: ReceiptStatus
    manifest_id: str
    passengers: int
    crew: int
    errors: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    warnings: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    message_ref: str
    revision: int
    def __init__(self, status: _Optional[_Union[ReceiptStatus, str]] = ..., manifest_id: _Optional[str] = ..., passengers: _Optional[int] = ..., crew: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., message_ref: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class PaxlstInterchange(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class PaxlstReceipts(_message.Message):
    __slots__ = ("status", "receipts", "errors", "warnings", "interchange_ref")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    INTERCHANGE_REF_FIELD_NUMBER: _ClassVar[int]
    status: ReceiptStatus
    receipts: _containers.RepeatedCompositeFieldContainer[Receipt]
    errors: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    warnings: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    interchange_ref: str
    def __init__(self, status: _Optional[_Union[ReceiptStatus, str]] = ..., receipts: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., interchange_ref: _Optional[str] = ...) -> None: ...

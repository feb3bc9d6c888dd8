import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransportMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_MODE_UNSPECIFIED: _ClassVar[TransportMode]
    TRANSPORT_MODE_AIR: _ClassVar[TransportMode]
    TRANSPORT_MODE_SEA: _ClassVar[TransportMode]

class MessageFunction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_FUNCTION_UNSPECIFIED: _ClassVar[MessageFunction]
    MESSAGE_FUNCTION_ORIGINAL: _ClassVar[MessageFunction]
    MESSAGE_FUNCTION_CHANGE: _ClassVar[MessageFunction]
    MESSAGE_FUNCTION_CANCEL: _ClassVar[MessageFunction]
    MESSAGE_FUNCTION_CLOSE_OUT: _ClassVar[MessageFunction]

class TravellerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAVELLER_ROLE_UNSPECIFIED: _ClassVar[TravellerRole]
    TRAVELLER_ROLE_PASSENGER: _ClassVar[TravellerRole]
    TRAVELLER_ROLE_CREW: _ClassVar[TravellerRole]
    TRAVELLER_ROLE_TRANSIT_PASSENGER: _ClassVar[TravellerRole]
    TRAVELLER_ROLE_TRANSIT_CREW: _ClassVar[TravellerRole]

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_X: _ClassVar[Sex]

class DocumentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_TYPE_UNSPECIFIED: _ClassVar[DocumentType]
    DOCUMENT_TYPE_PASSPORT: _ClassVar[DocumentType]
    DOCUMENT_TYPE_IDENTITY_CARD: _ClassVar[DocumentType]
    DOCUMENT_TYPE_VISA: _ClassVar[DocumentType]
    DOCUMENT_TYPE_RESIDENCE_PERMIT: _ClassVar[DocumentType]
    DOCUMENT_TYPE_SEAFARER_ID: _ClassVar[DocumentType]
    DOCUMENT_TYPE_CREW_LICENCE: _ClassVar[DocumentType]
    DOCUMENT_TYPE_OTHER: _ClassVar[DocumentType]

class BoardingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOARDING_STATUS_UNSPECIFIED: _ClassVar[BoardingStatus]
    BOARDING_STATUS_BOARDED: _ClassVar[BoardingStatus]
    BOARDING_STATUS_NOT_BOARDED: _ClassVar[BoardingStatus]

class Amendment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AMENDMENT_UNSPECIFIED: _ClassVar[Amendment]
    AMENDMENT_CHANGED_DATA: _ClassVar[Amendment]
    AMENDMENT_CANCELLED_RESERVATION: _ClassVar[Amendment]
    AMENDMENT_REDUCTION_IN_PARTY: _ClassVar[Amendment]
TRANSPORT_MODE_UNSPECIFIED: TransportMode
TRANSPORT_MODE_AIR: TransportMode
TRANSPORT_MODE_SEA: TransportMode
MESSAGE_FUNCTION_UNSPECIFIED: MessageFunction
MESSAGE_FUNCTION_ORIGINAL: MessageFunction
MESSAGE_FUNCTION_CHANGE: MessageFunction
MESSAGE_FUNCTION_CANCEL: MessageFunction
MESSAGE_FUNCTION_CLOSE_OUT: MessageFunction
TRAVELLER_ROLE_UNSPECIFIED: TravellerRole
TRAVELLER_ROLE_PASSENGER: TravellerRole
TRAVELLER_ROLE_CREW: TravellerRole
TRAVELLER_ROLE_TRANSIT_PASSENGER: TravellerRole
TRAVELLER_ROLE_TRANSIT_CREW: TravellerRole
SEX_UNSPECIFIED: Sex
SEX_MALE: Sex
SEX_FEMALE: Sex
SEX_X: Sex
DOCUMENT_TYPE_UNSPECIFIED: DocumentType
DOCUMENT_TYPE_PASSPORT: DocumentType
DOCUMENT_TYPE_IDENTITY_CARD: DocumentType
DOCUMENT_TYPE_VISA: DocumentType
DOCUMENT_TYPE_RESIDENCE_PERMIT: DocumentType
DOCUMENT_TYPE_SEAFARER_ID: DocumentType
DOCUMENT_TYPE_CREW_LICENCE: DocumentType
DOCUMENT_TYPE_OTHER: DocumentType
BOARDING_STATUS_UNSPECIFIED: BoardingStatus
BOARDING_STATUS_BOARDED: BoardingStatus
BOARDING_STATUS_NOT_BOARDED: BoardingStatus
AMENDMENT_UNSPECIFIED: Amendment
AMENDMENT_CHANGED_DATA: Amendment
AMENDMENT_CANCELLED_RESERVATION: Amendment
AMENDMENT_REDUCTION_IN_PARTY: Amendment

class PartialDate(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class Leg(_message.Message):
    __slots__ = ("origin", "destination", "scheduled_departure", "scheduled_arrival")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    origin: str
    destination: str
    scheduled_departure: _timestamp_pb2.Timestamp
    scheduled_arrival: _timestamp_pb2.Timestamp
    def __init__(self, origin: _Optional[str] = ..., destination: _Optional[str] = ..., scheduled_departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_arrival: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("type", "number", "issuing_state", "expiry", "mrz")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUING_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    MRZ_FIELD_NUMBER: _ClassVar[int]
    type: DocumentType
    number: str
    issuing_state: str
    expiry: PartialDate
    mrz: str
    def __init__(self, type: _Optional[_Union[DocumentType, str]] = ..., number: _Optional[str] = ..., issuing_state: _Optional[str] = ..., expiry: _Optional[_Union[PartialDate, _Mapping]] = ..., mrz: _Optional[str] = ...) -> None: ...

class Booking(_message.Message):
    __slots__ = ("booking_date", "payment_form", "one_way")
    BOOKING_DATE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FORM_FIELD_NUMBER: _ClassVar[int]
    ONE_WAY_FIELD_NUMBER: _ClassVar[int]
    booking_date: PartialDate
    payment_form: str
    one_way: bool
    def __init__(self, booking_date: _Optional[_Union[PartialDate, _Mapping]] = ..., payment_form: _Optional[str] = ..., one_way: _Optional[bool] = ...) -> None: ...

class Traveller(_message.Message):
    __slots__ = ("role", "surname", "given_names", "sex", "date_of_birth", "nationality", "residence", "documents", "reservation_locator", "passenger_ref", "seat", "embarkation", "debarkation", "booking", "boarding")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAMES_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    RESIDENCE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_LOCATOR_FIELD_NUMBER: _ClassVar[int]
    PASSENGER_REF_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    EMBARKATION_FIELD_NUMBER: _ClassVar[int]
    DEBARKATION_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    BOARDING_FIELD_NUMBER: _ClassVar[int]
    role: TravellerRole
    surname: str
    given_names: str
    sex: Sex
    date_of_birth: PartialDate
    nationality: str
    residence: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    reservation_locator: str
    passenger_ref: str
    seat: str
    embarkation: str
    debarkation: str
    booking: Booking
    boarding: BoardingStatus
    def __init__(self, role: _Optional[_Union[TravellerRole, str]] = ..., surname: _Optional[str] = ..., given_names: _Optional[str] = ..., sex: _Optional[_Union[Sex, str]] = ..., date_of_birth: _Optional[_Union[PartialDate, _Mapping]] = ..., nationality: _Optional[str] = ..., residence: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., reservation_locator: _Optional[str] = ..., passenger_ref: _Optional[str] = ..., seat: _Optional[str] = ..., embarkation: _Optional[str] = ..., debarkation: _Optional[str] = ..., booking: _Optional[_Union[Booking, _Mapping]] = ..., boarding: _Optional[_Union[BoardingStatus, str]] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("carrier", "transport_mode", "flight_number", "legs", "function", "message_ref", "revision", "travellers", "sent_at", "manifest_id", "received_at", "amendment", "source_format", "part", "intake_warnings")
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_MODE_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_REF_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TRAVELLERS_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    AMENDMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    INTAKE_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    carrier: str
    transport_mode: TransportMode
    flight_number: str
    legs: _containers.RepeatedCompositeFieldContainer[Leg]
    function: MessageFunction
    message_ref: str
    revision: int
    travellers: _containers.RepeatedCompositeFieldContainer[Traveller]
    sent_at: _timestamp_pb2.Timestamp
    manifest_id: str
    received_at: _timestamp_pb2.Timestamp
    amendment: Amendment
    source_format: str
    part: int
    intake_warnings: _containers.RepeatedCompositeFieldContainer[IntakeWarning]
    def __init__(self, carrier: _Optional[str] = ..., transport_mode: _Optional[_Union[TransportMode, str]] = ..., flight_number: _Optional[str] = ..., legs: _Optional[_Iterable[_Union[Leg, _Mapping]]] = ..., function: _Optional[_Union[MessageFunction, str]] = ..., message_ref: _Optional[str] = ..., revision: _Optional[int] = ..., travellers: _Optional[_Iterable[_Union[Traveller, _Mapping]]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., manifest_id: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amendment: _Optional[_Union[Amendment, str]] = ..., source_format: _Optional[str] = ..., part: _Optional[int] = ..., intake_warnings: _Optional[_Iterable[_Union[IntakeWarning, _Mapping]]] = ...) -> None: ...

class IntakeWarning(_message.Message):
    __slots__ = ("code", "field", "more")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    code: str
    field: str
    more: int
    def __init__(self, code: _Optional[str] = ..., field: _Optional[str] = ..., more: _Optional[int] = ...) -> None: ...

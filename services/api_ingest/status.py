"""Rejections as gRPC statuses: INVALID_ARGUMENT carrying google.rpc.BadRequest and the receipt itself.

A call whose every manifest is rejected fails with INVALID_ARGUMENT, so no client can mistake it for a
success; its details hold the field violations (readable by any gRPC tool, e.g. grpcurl) and the full
receipt, which `services.client` unpacks so carriers' code gets the same receipt either way.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.wire import intake_pb2


def bad_request(violations) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=v.field or v.segment,
                description=f"{v.segment + ': ' if v.segment else ''}{v.description} [{v.code}]",
                reason=v.code,
            )
            for v in violations
        ]
    )


def reject(context: grpc.ServicerContext, message: str, violations, answer: Message) -> None:
    """Abort the call with INVALID_ARGUMENT; details: BadRequest, then the receipt (``answer``)."""
    details = []
    for detail in (bad_request(violations), answer):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=details)
    context.abort_with_status(rpc_status.to_status(status))


def answer_from_error(error: grpc.RpcError, cls: type[Message]) -> Message | None:
    """The receipt packed in a rejection's details, or None when the error carries none."""
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(cls.DESCRIPTOR):
            answer = cls()
            detail.Unpack(answer)
            return answer
    return None


def all_violations(receipts: intake_pb2.PaxlstReceipts) -> list[intake_pb2.FieldViolation]:
    found = list(receipts.errors)
    for receipt in receipts.receipts:
        found.extend(receipt.errors)
    return found

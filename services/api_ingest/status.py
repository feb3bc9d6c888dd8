"""Rejections as gRPC statuses: INVALID_ARGUMENT carrying google.rpc.BadRequest and the receipt itself.

A call whose every manifest is rejected fails with INVALID_ARGUMENT, so no client can mistake it for a
success; its details hold the field violations (readable by any gRPC tool, e.g. grpcurl) and the full
receipt, which `services.client` unpacks so carriers' code gets the same receipt either way.

The status travels in the call's trailing metadata (grpc-status-details-bin, base64-encoded), which gRPC limits
(8 KiB by default, counting every header): past it the carrier would see "RESOURCE_EXHAUSTED: Stream removed"
instead of its errors. So the status is kept under MAX_STATUS_BYTES: each list of violations (in the BadRequest and
in the receipt) keeps its first entries that fit its share and ends with "... and N more errors"; the message says
the full count. A PAXLST interchange's receipts beyond the share are summed up the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.wire import intake_pb2

# The encoded google.rpc.Status at most (bytes): base64 makes it 4/3 larger on the wire, still well under 8 KiB.
MAX_STATUS_BYTES = 4096
# Shares of MAX_STATUS_BYTES: the BadRequest, and the packed receipt (the rest: message, framing).
BAD_REQUEST_BYTES = 1536
ANSWER_BYTES = 2048
MAX_MESSAGE_CHARS = 300
# One violation's texts are shortened to these lengths (characters).
TEXT_LIMITS = {"field": 120, "code": 60, "segment": 40, "description": 300}
# The encoded size of a "... and N more errors" entry, at most (with its framing).
MARKER_BYTES = 80
TRUNCATED = "truncated"
# A receipt's echo of the carrier's message reference is cut to this (PAXLST's is an..35; characters).
MESSAGE_REF_CHARS = 70


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shortened(v) -> intake_pb2.FieldViolation:
    """A copy of a violation with each text cut to TEXT_LIMITS."""
    return intake_pb2.FieldViolation(
        **{name: _short(getattr(v, name, "") or "", size) for name, size in TEXT_LIMITS.items()}
    )


def marker(more: int, shown: int, noun: str) -> intake_pb2.FieldViolation:
    """The last entry of a list that was cut: how many are not shown."""
    text = f"... and {more} more {noun}" if shown else f"{more} {noun} not shown"
    return intake_pb2.FieldViolation(code=TRUNCATED, description=text)


def _to_bad_request(v: intake_pb2.FieldViolation) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=v.field or v.segment,
        description=f"{v.segment + ': ' if v.segment else ''}{v.description} [{v.code}]",
        reason=v.code,
    )


def fit(dest, source: Sequence, room: int, noun: str, convert: Callable = lambda v: v) -> int:
    """Append to ``dest`` the first violations of ``source`` that fit in ``room`` bytes, then, if some did not,
    a marker saying how many more; returns the room left. ``room`` must include MARKER_BYTES for the marker."""
    room -= MARKER_BYTES
    kept = 0
    for v in source:
        item = convert(shortened(v))
        size = item.ByteSize() + 4  # tag and length
        if size > room:
            break
        dest.append(item)
        room -= size
        kept += 1
    if kept < len(source):
        dest.append(convert(marker(len(source) - kept, kept, noun)))
        return max(room, 0)
    return room + MARKER_BYTES


def bad_request(violations, budget: int = BAD_REQUEST_BYTES) -> error_details_pb2.BadRequest:
    found = error_details_pb2.BadRequest()
    fit(found.field_violations, list(violations), budget, "errors", _to_bad_request)
    return found


def _frame(receipt: intake_pb2.Receipt) -> intake_pb2.Receipt:
    """A receipt without its violations, its echoed message reference shortened."""
    frame = intake_pb2.Receipt()
    frame.CopyFrom(receipt)
    del frame.errors[:], frame.warnings[:]
    frame.message_ref = _short(frame.message_ref, MESSAGE_REF_CHARS)
    return frame


def _fit_receipt(receipt: intake_pb2.Receipt, budget: int) -> intake_pb2.Receipt:
    fitted = _frame(receipt)
    room = budget - fitted.ByteSize()
    room = fit(fitted.errors, receipt.errors, room, "errors")
    fit(fitted.warnings, receipt.warnings, room, "warnings")
    return fitted


def _fit_receipts(answer: intake_pb2.PaxlstReceipts, budget: int) -> intake_pb2.PaxlstReceipts:
    """The interchange's answer within ``budget``: the first receipts whose frame fits half of it (the others
    summed up in a last error), then as many of every list's violations as fit, errors first."""
    fitted = intake_pb2.PaxlstReceipts(
        status=answer.status, interchange_ref=_short(answer.interchange_ref, MESSAGE_REF_CHARS)
    )
    frames = []
    room = budget // 2 - fitted.ByteSize() - 2 * MARKER_BYTES  # the interchange's own lists' markers
    for receipt in answer.receipts:
        frame = _frame(receipt)
        cost = frame.ByteSize() + 4 + MARKER_BYTES * (bool(receipt.errors) + bool(receipt.warnings))
        if cost > room - MARKER_BYTES:
            break
        frames.append(frame)
        room -= cost
    fitted.receipts.extend(frames)
    left_out = len(answer.receipts) - len(frames)
    room = budget - fitted.ByteSize() - (MARKER_BYTES if left_out else 0)
    room = fit(fitted.errors, answer.errors, room, "errors")
    for frame, receipt in zip(fitted.receipts, answer.receipts, strict=False):
        room = fit(frame.errors, receipt.errors, room, "errors")
    room = fit(fitted.warnings, answer.warnings, room, "warnings")
    for frame, receipt in zip(fitted.receipts, answer.receipts, strict=False):
        room = fit(frame.warnings, receipt.warnings, room, "warnings")
    if left_out:
        fitted.errors.append(marker(left_out, len(frames), "messages' receipts"))
    return fitted


def fitted_answer(answer: Message, budget: int = ANSWER_BYTES) -> Message:
    """A receipt (or an interchange's receipts) cut to ``budget`` bytes as the lists above say."""
    if isinstance(answer, intake_pb2.Receipt):
        return _fit_receipt(answer, budget)
    if isinstance(answer, intake_pb2.PaxlstReceipts):
        return _fit_receipts(answer, budget)
    return answer


def rejection_status(message: str, violations, answer: Message) -> status_pb2.Status:
    """INVALID_ARGUMENT with details BadRequest, then the receipt (``answer``), under MAX_STATUS_BYTES."""
    violations = list(violations)
    scale = 1
    while True:
        details = []
        for detail in (
            bad_request(violations, BAD_REQUEST_BYTES // scale),
            fitted_answer(answer, ANSWER_BYTES // scale),
        ):
            packed = any_pb2.Any()
            packed.Pack(detail)
            details.append(packed)
        status = status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=_short(message, MAX_MESSAGE_CHARS), details=details
        )
        # Shares are upper bounds already; halving them covers any answer type fitted_answer does not know.
        if status.ByteSize() <= MAX_STATUS_BYTES or scale >= 64:
            return status
        scale *= 2


def reject(context: grpc.ServicerContext, message: str, violations, answer: Message) -> None:
    """Abort the call with INVALID_ARGUMENT; details: BadRequest, then the receipt (``answer``), both cut to fit
    the trailing metadata (the message keeps the full count)."""
    context.abort_with_status(rpc_status.to_status(rejection_status(message, violations, answer)))


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

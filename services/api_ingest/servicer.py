"""ManifestIntake: validate, recognise resends, store in Kafka, and only then answer with a receipt."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from kafka.errors import KafkaError
from prometheus_client import Counter, Histogram

from services.api_ingest.index import IntakeIndex
from services.api_ingest.status import all_violations, reject
from services.auth import authenticate
from services.bus import Topics
from services.codec import count_roles, duplicate_keys, first_departure, flight_key, manifest_id
from services.config import HubSettings
from services.edge.cleaning import IntakeLimits, clean_manifest, listed_warnings
from services.wire import intake_pb2, intake_pb2_grpc, manifest_pb2

log = logging.getLogger(__name__)

MANIFESTS = Counter(
    "apihub_ingest_manifests",
    "Manifests answered, by carrier, format and receipt status",
    ["carrier", "format", "status"],
)
TRAVELLERS = Counter("apihub_ingest_travellers", "Travellers in accepted manifests", ["carrier", "role"])
VIOLATIONS = Counter(
    "apihub_ingest_violations",
    "Errors and warnings found at intake, by carrier and code",
    ["carrier", "severity", "code"],
)
LEAD_TIME = Histogram(
    "apihub_ingest_lead_time_seconds",
    "How long before the scheduled departure an accepted manifest arrived (late ones count as 0)",
    ["carrier"],
    buckets=(0, 300, 900, 1800, 3600, 7200, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)
LATE = Counter("apihub_ingest_late_manifests", "Accepted manifests received after the scheduled departure", ["carrier"])
ACK_SECONDS = Histogram(
    "apihub_ingest_broker_ack_seconds",
    "From send to broker acknowledgement",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UNAVAILABLE = Counter("apihub_ingest_broker_unavailable", "Submissions refused because Kafka did not ack")

# How many manifests a bulk stream keeps in flight before waiting for the oldest ack.
STREAM_WINDOW = 64
UNAVAILABLE_DETAILS = "the hub could not store the manifest (message broker unavailable); retry later"


@dataclass
class _Pending:
    """One manifest sent to Kafka, waiting for all its records to be acknowledged."""

    receipt: intake_pb2.Receipt
    carrier: str
    fmt: str
    futures: list = field(default_factory=list)
    started: float = 0.0
    departure: datetime | None = None
    error: Exception | None = None


class ManifestIntakeServicer(intake_pb2_grpc.ManifestIntakeServicer):
    def __init__(self, settings: HubSettings, producer, index: IntakeIndex):
        self._settings = settings
        self._producer = producer
        self._index = index
        self._topics = Topics(settings.topic_prefix)
        self._limits = IntakeLimits.from_settings(settings)

    # -- RPCs ---------------------------------------------------------------------------------------
    def SubmitManifest(self, request: manifest_pb2.Manifest, context: grpc.ServicerContext) -> intake_pb2.Receipt:
        principal = authenticate(context, self._settings, "carrier")
        self._check_carrier(principal.code, request, context)
        receipt = self._settle(self._send(request, request.SerializeToString(), "grpc"), context)
        if receipt.status == intake_pb2.RECEIPT_STATUS_REJECTED:
            reject(context, f"manifest rejected: {len(receipt.errors)} errors", receipt.errors, receipt)
        return receipt

    def SubmitManifests(
        self, request_iterator: Iterator[manifest_pb2.Manifest], context: grpc.ServicerContext
    ) -> Iterator[intake_pb2.Receipt]:
        principal = authenticate(context, self._settings, "carrier")
        window: deque = deque()
        for request in request_iterator:
            self._check_carrier(principal.code, request, context)
            window.append(self._send(request, request.SerializeToString(), "grpc"))
            while len(window) > STREAM_WINDOW:
                yield self._settle(window.popleft(), context)
        while window:
            yield self._settle(window.popleft(), context)

    def SubmitPaxlst(
        self, request: intake_pb2.PaxlstInterchange, context: grpc.ServicerContext
    ) -> intake_pb2.PaxlstReceipts:
        from services.paxlst.reader import parse_paxlst

        principal = authenticate(context, self._settings, "carrier")
        interchange = parse_paxlst(request.data)
        reply = intake_pb2.PaxlstReceipts(interchange_ref=interchange.interchange_ref)
        reply.warnings.extend(interchange.warnings)
        # The interchange's own findings (trailing data, oversized segments, control counts) on the metrics page too.
        self._count_violations(principal.code, interchange.errors, interchange.warnings)
        if interchange.errors:
            reply.status = intake_pb2.RECEIPT_STATUS_REJECTED
            reply.errors.extend(interchange.errors)
            MANIFESTS.labels(principal.code, "paxlst", "rejected").inc()
            reject(context, "PAXLST interchange rejected", interchange.errors, reply)
        pending = []
        for message in interchange.messages:
            if message.manifest is None or message.errors:
                receipt = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED)
                receipt.errors.extend(message.errors)
                receipt.warnings.extend(message.warnings)
                if message.manifest is not None:
                    receipt.message_ref, receipt.revision = (
                        message.manifest.message_ref,
                        message.manifest.revision,
                    )
                MANIFESTS.labels(principal.code, "paxlst", "rejected").inc()
                self._count_violations(principal.code, message.errors, message.warnings)
                pending.append(receipt)
                continue
            manifest = message.manifest
            if manifest.carrier.upper() != principal.code:
                receipt = intake_pb2.Receipt(
                    status=intake_pb2.RECEIPT_STATUS_REJECTED, message_ref=manifest.message_ref
                )
                receipt.errors.add(
                    field="carrier",
                    code="carrier_not_allowed",
                    segment=message.locate("carrier"),
                    description=f"carrier {principal.code} may not submit for carrier '{manifest.carrier}'",
                )
                pending.append(receipt)
                continue
            pending.append(
                self._send(manifest, message.raw, "paxlst", locate=message.locate, warnings=message.warnings)
            )
        for item in pending:
            reply.receipts.append(self._settle(item, context))
        ok = (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE)
        all_ok = reply.receipts and all(r.status in ok for r in reply.receipts)
        reply.status = intake_pb2.RECEIPT_STATUS_ACCEPTED if all_ok else intake_pb2.RECEIPT_STATUS_REJECTED
        if not any(r.status in ok for r in reply.receipts):
            violations = all_violations(reply)
            reject(
                context,
                f"every message of the interchange was rejected ({len(violations)} errors)",
                violations,
                reply,
            )
        return reply

    # -- steps --------------------------------------------------------------------------------------
    def _check_carrier(self, code: str, request: manifest_pb2.Manifest, context: grpc.ServicerContext) -> None:
        if request.carrier.upper() != code:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"carrier {code} may not submit manifests for carrier '{request.carrier}'",
            )

    def _send(self, request, raw: bytes, fmt: str, locate=None, warnings=()) -> _Pending | intake_pb2.Receipt:
        """Clean and validate (services.edge.cleaning) and look for a resend; reject or answer at once, or
        send every record (the raw bytes as received, the cleaned manifest) and return what to wait for."""
        carrier = request.carrier.upper()
        cleaning = clean_manifest(request, self._limits)
        canonical, errors = cleaning.manifest, cleaning.errors
        found = [*warnings, *cleaning.warnings]
        if locate is not None:
            for violation in (*errors, *cleaning.warnings):
                violation.segment = violation.segment or locate(violation.field)
        self._count_violations(carrier, errors, found)
        listed, kept = listed_warnings(found)
        passengers, crew = count_roles(request if errors else canonical)
        receipt = intake_pb2.Receipt(
            passengers=passengers, crew=crew, message_ref=canonical.message_ref, revision=request.revision
        )
        receipt.warnings.extend(listed)
        if errors:
            receipt.status = intake_pb2.RECEIPT_STATUS_REJECTED
            receipt.errors.extend(errors)
            MANIFESTS.labels(carrier, fmt, "rejected").inc()
            log.info("rejected %s manifest from %s: %d errors", fmt, carrier, len(errors))
            return receipt
        keys = duplicate_keys(request)
        known = self._index.lookup(keys)
        if known:
            receipt.status = intake_pb2.RECEIPT_STATUS_DUPLICATE
            receipt.manifest_id = known
            MANIFESTS.labels(carrier, fmt, "duplicate").inc()
            log.info("duplicate %s manifest from %s: already stored as %s", fmt, carrier, known)
            return receipt
        # Ids and resend keys come from the manifest as received, so a resend of the same bytes is recognised and
        # two versions that cleaning happens to make alike are still two.
        canonical.manifest_id = manifest_id(request)
        canonical.source_format = fmt
        canonical.received_at.GetCurrentTime()
        canonical.intake_warnings.extend(kept)
        receipt.manifest_id = canonical.manifest_id
        pending = _Pending(receipt, carrier, fmt, started=time.perf_counter(), departure=first_departure(canonical))
        mid = canonical.manifest_id.encode()
        try:
            pending.futures = [
                self._producer.send(self._topics.raw, key=mid, value=raw, headers=[("format", fmt.encode())]),
                self._producer.send(
                    self._topics.manifests,
                    key=flight_key(canonical).encode(),
                    value=canonical.SerializeToString(),
                ),
                *(self._producer.send(self._topics.intake_index, key=k.encode(), value=mid) for k in keys),
            ]
        except KafkaError as exc:
            pending.error = exc
            return pending
        # Remember the keys when the broker holds everything, even if that is after the carrier gave up
        # waiting: its retry is then a duplicate, not a second copy.
        remaining = [len(pending.futures)]

        def stored(_metadata) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self._index.remember(keys, canonical.manifest_id)

        for future in pending.futures:
            future.add_callback(stored)
        return pending

    def _settle(self, item: _Pending | intake_pb2.Receipt, context: grpc.ServicerContext) -> intake_pb2.Receipt:
        """Wait for the broker's acks; a receipt is only ever sent for data the broker holds."""
        if isinstance(item, intake_pb2.Receipt):
            return item
        try:
            if item.error is not None:
                raise item.error
            for future in item.futures:
                future.get(timeout=self._settings.intake_ack_timeout_seconds)
        except KafkaError as exc:
            UNAVAILABLE.inc()
            log.warning("broker did not acknowledge manifest %s: %s", item.receipt.manifest_id, type(exc).__name__)
            context.abort(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_DETAILS)
        ACK_SECONDS.observe(time.perf_counter() - item.started)
        receipt = item.receipt
        receipt.status = intake_pb2.RECEIPT_STATUS_ACCEPTED
        MANIFESTS.labels(item.carrier, item.fmt, "accepted").inc()
        TRAVELLERS.labels(item.carrier, "passenger").inc(receipt.passengers)
        TRAVELLERS.labels(item.carrier, "crew").inc(receipt.crew)
        if item.departure is not None:
            lead = (item.departure - datetime.now(UTC)).total_seconds()
            LEAD_TIME.labels(item.carrier).observe(max(lead, 0.0))
            if lead < 0:
                LATE.labels(item.carrier).inc()
        log.info(
            "accepted %s manifest %s from %s: %d passengers, %d crew",
            item.fmt,
            receipt.manifest_id,
            item.carrier,
            receipt.passengers,
            receipt.crew,
        )
        return receipt

    def _count_violations(self, carrier: str, errors, warnings) -> None:
        for severity, violations in (("error", errors), ("warning", warnings)):
            for v in violations:
                VIOLATIONS.labels(carrier, severity, v.code or "unspecified").inc()

"""ManifestIntake: validate, store in Kafka, and only then answer with a receipt."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator

import grpc
from kafka.errors import KafkaError
from prometheus_client import Counter, Histogram

from services.api_ingest.validation import validate_manifest
from services.auth import authenticate
from services.bus import Topics
from services.codec import count_roles, flight_key, manifest_id
from services.config import HubSettings
from services.wire import intake_pb2, intake_pb2_grpc, manifest_pb2

log = logging.getLogger(__name__)

MANIFESTS = Counter(
    "apihub_ingest_manifests", "Manifests answered, by carrier and receipt status", ["carrier", "status"]
)
TRAVELLERS = Counter("apihub_ingest_travellers", "Travellers in accepted manifests", ["carrier", "role"])
ACK_SECONDS = Histogram(
    "apihub_ingest_broker_ack_seconds",
    "From send to broker acknowledgement",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UNAVAILABLE = Counter("apihub_ingest_broker_unavailable", "Submissions refused because Kafka did not ack")

# How many manifests a bulk stream keeps in flight before waiting for the oldest ack.
STREAM_WINDOW = 64


class _Pending:
    """One manifest sent to Kafka, waiting for both records to be acknowledged."""

    def __init__(self, receipt: intake_pb2.Receipt, futures: list, carrier: str, started: float):
        self.receipt, self.futures, self.carrier, self.started = receipt, futures, carrier, started


class ManifestIntakeServicer(intake_pb2_grpc.ManifestIntakeServicer):
    def __init__(self, settings: HubSettings, producer):
        self._settings = settings
        self._producer = producer
        self._topics = Topics(settings.topic_prefix)
        # A producer future must resolve within this, or the carrier gets UNAVAILABLE (retryable).
        self._ack_timeout = 15.0

    # -- RPCs ---------------------------------------------------------------------------------------
    def SubmitManifest(
        self, request: manifest_pb2.Manifest, context: grpc.ServicerContext
    ) -> intake_pb2.Receipt:
        principal = authenticate(context, self._settings.auth_secret, "carrier")
        self._check_carrier(principal.code, request, context)
        pending = self._send(request)
        if isinstance(pending, intake_pb2.Receipt):
            return pending
        return self._settle(pending, context)

    def SubmitManifests(
        self, request_iterator: Iterator[manifest_pb2.Manifest], context: grpc.ServicerContext
    ) -> Iterator[intake_pb2.Receipt]:
        principal = authenticate(context, self._settings.auth_secret, "carrier")
        window: deque = deque()
        for request in request_iterator:
            self._check_carrier(principal.code, request, context)
            window.append(self._send(request))
            while len(window) > STREAM_WINDOW:
                yield self._settle_any(window.popleft(), context)
        while window:
            yield self._settle_any(window.popleft(), context)

    # -- steps --------------------------------------------------------------------------------------
    def _check_carrier(
        self, code: str, request: manifest_pb2.Manifest, context: grpc.ServicerContext
    ) -> None:
        if request.carrier.upper() != code:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"carrier {code} may not submit manifests for carrier '{request.carrier}'",
            )

    def _send(self, request: manifest_pb2.Manifest) -> _Pending | intake_pb2.Receipt:
        """Validate; reject at once, or send raw and canonical records and return what to wait for."""
        passengers, crew = count_roles(request)
        receipt = intake_pb2.Receipt(
            passengers=passengers, crew=crew, message_ref=request.message_ref, revision=request.revision
        )
        errors, warnings = validate_manifest(request)
        receipt.warnings.extend(warnings)
        carrier = request.carrier.upper()
        if errors:
            receipt.status = intake_pb2.RECEIPT_STATUS_REJECTED
            receipt.errors.extend(errors)
            MANIFESTS.labels(carrier, "rejected").inc()
            log.info("rejected manifest from %s: %d errors", carrier, len(errors))
            return receipt
        raw = request.SerializeToString()
        canonical = manifest_pb2.Manifest()
        canonical.CopyFrom(request)
        canonical.manifest_id = manifest_id(request)
        canonical.received_at.GetCurrentTime()
        receipt.manifest_id = canonical.manifest_id
        started = time.perf_counter()
        try:
            futures = [
                self._producer.send(self._topics.raw, key=canonical.manifest_id.encode(), value=raw),
                self._producer.send(
                    self._topics.manifests,
                    key=flight_key(canonical).encode(),
                    value=canonical.SerializeToString(),
                ),
            ]
        except KafkaError as exc:
            futures = [exc]
        return _Pending(receipt, futures, carrier, started)

    def _settle_any(self, item, context) -> intake_pb2.Receipt:
        return item if isinstance(item, intake_pb2.Receipt) else self._settle(item, context)

    def _settle(self, pending: _Pending, context: grpc.ServicerContext) -> intake_pb2.Receipt:
        """Wait for the broker's acks; a receipt is only ever sent for data the broker holds."""
        try:
            for future in pending.futures:
                if isinstance(future, Exception):
                    raise future
                future.get(timeout=self._ack_timeout)
        except KafkaError as exc:
            UNAVAILABLE.inc()
            log.warning(
                "broker did not acknowledge manifest %s: %s", pending.receipt.manifest_id, type(exc).__name__
            )
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "the hub could not store the manifest (message broker unavailable); retry later",
            )
        ACK_SECONDS.observe(time.perf_counter() - pending.started)
        receipt = pending.receipt
        receipt.status = intake_pb2.RECEIPT_STATUS_ACCEPTED
        MANIFESTS.labels(pending.carrier, "accepted").inc()
        TRAVELLERS.labels(pending.carrier, "passenger").inc(receipt.passengers)
        TRAVELLERS.labels(pending.carrier, "crew").inc(receipt.crew)
        log.info(
            "accepted manifest %s from %s: %d passengers, %d crew",
            receipt.manifest_id,
            pending.carrier,
            receipt.passengers,
            receipt.crew,
        )
        return receipt

"""The router process: the member-facing gRPC server (HitDelivery, WatchlistAdmin, RulesAdmin, MemberRecords,
BoardAdmin, health, reflection) plus the RouterWorker thread that fills the outboxes.

``DeliveryServer`` builds and binds (tests listen on "127.0.0.1:0"); ``run_router`` is the entry point that
owns signals, metrics and the shutdown order.
"""

from __future__ import annotations

import logging
import threading
import time

from services.audit import AuditSealer
from services.bus import ensure_topics
from services.config import HubSettings
from services.directory import Directory, load_directory
from services.limits import LimitInterceptor
from services.router.admin import ConfigProducer, RulesAdminServicer, WatchlistAdminServicer
from services.router.board import BoardAdminServicer
from services.router.delivery import HitDeliveryServicer
from services.router.lag import OutboxLagMonitor
from services.router.records import MemberRecordsServicer
from services.router.webhook import WebhookDispatcher
from services.router.worker import RouterWorker
from services.serving import add_standard_services, bind, new_grpc_server, start_metrics, wait_for_signal
from services.wire import delivery_pb2, delivery_pb2_grpc

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0
# Longest the member-facing server waits for the router worker's warm-up before it listens anyway.
WARM_UP_WAIT_S = 60.0
SERVICE_NAMES = [
    delivery_pb2.DESCRIPTOR.services_by_name["HitDelivery"].full_name,
    delivery_pb2.DESCRIPTOR.services_by_name["WatchlistAdmin"].full_name,
    delivery_pb2.DESCRIPTOR.services_by_name["RulesAdmin"].full_name,
    delivery_pb2.DESCRIPTOR.services_by_name["MemberRecords"].full_name,
    delivery_pb2.DESCRIPTOR.services_by_name["BoardAdmin"].full_name,
]


class DeliveryServer:
    """The member-facing server and its servicers; ``stop()`` ends streams, drains calls, closes clients."""

    def __init__(self, settings: HubSettings, directory: Directory, listen: str | None = None):
        self.delivery = HitDeliveryServicer(settings, directory)
        # One producer per process for members' configuration, shared by both admin servicers.
        self.config_producer = ConfigProducer.for_settings(settings)
        # Loads are written to the audit trail through the HitDelivery servicer's producer, as its own events are.
        audit = self.delivery.record
        self.admin = WatchlistAdminServicer(settings, directory, producer=self.config_producer, audit=audit)
        self.rules = RulesAdminServicer(settings, directory, producer=self.config_producer, audit=audit)
        # Members' own records (watchlist entries, audit trail, dispositions, precision, outbox lag), and views.
        self.records = MemberRecordsServicer(settings, directory, self.delivery)
        # Interactive API: members' board policies and their officers' board overrides.
        self.board = BoardAdminServicer(settings, directory, self.delivery, self.config_producer)
        # Every member bounded (services.limits): streams, admin loads and bytes per member, a reserve for the rest.
        self.limits = LimitInterceptor(settings)
        self.server = new_grpc_server(settings, self.limits)
        delivery_pb2_grpc.add_HitDeliveryServicer_to_server(self.delivery, self.server)
        delivery_pb2_grpc.add_WatchlistAdminServicer_to_server(self.admin, self.server)
        delivery_pb2_grpc.add_RulesAdminServicer_to_server(self.rules, self.server)
        delivery_pb2_grpc.add_MemberRecordsServicer_to_server(self.records, self.server)
        delivery_pb2_grpc.add_BoardAdminServicer_to_server(self.board, self.server)
        self.health = add_standard_services(self.server, SERVICE_NAMES)
        self.port = bind(self.server, listen or settings.delivery_listen, settings)
        self._stopped = False

    def start(self) -> DeliveryServer:
        self.server.start()
        return self

    def stop(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """NOT_SERVING first (balancers move away); open streams end with UNAVAILABLE. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.health.enter_graceful_shutdown()
        self.delivery.stop()
        self.server.stop(grace).wait()
        self.delivery.close()
        self.records.close()
        self.board.close()
        self.config_producer.close()


def run_router(settings: HubSettings) -> None:
    """Run the router until SIGTERM/SIGINT: end streams, stop the worker after its batch, exit."""
    directory = load_directory(settings.directory_file)
    created = ensure_topics(settings, directory.codes)
    if created:
        log.info("created %d topics", len(created))
    metrics = start_metrics(settings.router_metrics_port, settings.metrics_host)
    worker = RouterWorker(settings, directory)
    thread = threading.Thread(target=worker.run, name="router-worker", daemon=True)
    thread.start()
    # Warm before listening: the hub is up (healthy) once hits are routed as fast as they will be.
    deadline = time.monotonic() + WARM_UP_WAIT_S
    while not worker.ready.wait(0.2) and thread.is_alive() and time.monotonic() < deadline:
        pass
    if not worker.ready.is_set():
        log.warning("router worker not warmed up after %.0fs; listening anyway", WARM_UP_WAIT_S)
    server = DeliveryServer(settings, directory).start()
    # Push channels: one dispatcher thread per member with a webhook in the directory.
    hooks = [WebhookDispatcher(settings, m) for m in directory.members.values() if m.webhook]
    hook_threads = [threading.Thread(target=h.run, name=f"webhook-{i}", daemon=True) for i, h in enumerate(hooks)]
    for t in hook_threads:
        t.start()
    # Outbox lag of every member from the broker, so one that stopped acknowledging shows in the metrics.
    lag = OutboxLagMonitor(settings, directory)
    threading.Thread(target=lag.run, name="outbox-lag", daemon=True).start()
    # Seals on the audit trail (services.audit), every audit_seal_seconds and once more after the writers stopped.
    sealer = AuditSealer(settings) if settings.audit_seal_seconds > 0 else None
    if sealer is not None:
        threading.Thread(target=sealer.run, name="audit-sealer", daemon=True).start()
    log.info("member delivery server on port %d (metrics %s)", server.port, metrics)

    def shutdown() -> None:
        log.info("router stopping")
        worker.stop()
        for hook in hooks:
            hook.stop()
        lag.stop()
        server.stop()
        thread.join(timeout=30)
        worker.close()
        for hook, t in zip(hooks, hook_threads, strict=True):
            t.join(timeout=15)
            hook.close()
        lag.close()
        if sealer is not None:
            sealer.close()
        log.info("router stopped")

    wait_for_signal(shutdown, watch=thread)

"""docker-compose.yml stays a valid description of the hub (Docker itself is not on CI machines)."""

from __future__ import annotations

import shutil
import subprocess
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry, Counter, start_http_server
from typer.testing import CliRunner

from services.cli import Service, app
from services.devkafka import free_port
from services.serving import add_standard_services

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def test_compose_runs_kafka_and_every_service():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"kafka", "ingest", "profiler", "router"} <= set(services)
    for name in (s.value for s in Service):
        assert services[name]["command"] == ["serve", name]
        assert "APIHUB_KAFKA_BOOTSTRAP" in services[name]["environment"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["profiler"]["deploy"]["replicas"] >= 2


def test_docker_compose_config_parses_when_docker_compose_is_installed():
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    if not has_compose:
        pytest.skip("the docker compose plugin is not installed; only the structure test above ran")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


HEALTH_TIMING = {"interval", "timeout", "retries", "start_period"}


def test_every_service_has_a_healthcheck_and_a_restart_policy():
    """Docker restarts a hub service whose process exits; its healthcheck (`apihub health NAME`) says whether it
    answers. The broker has its own."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in (s.value for s in Service):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "apihub", "health", name]
        assert set(check) >= HEALTH_TIMING
        assert services[name]["restart"] == "unless-stopped"
    assert services["kafka"]["healthcheck"]["test"]


# -- what the healthchecks run: `apihub health NAME` -----------------------------------------------------------------
def health(name: str, **env: str):
    return CliRunner().invoke(app, ["health", name, "--timeout", "5"], env={"APIHUB_METRICS_HOST": "0.0.0.0", **env})


@pytest.fixture
def grpc_server():
    """A gRPC server with the hub's standard health service, as ingest and router run it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_servicer = add_standard_services(server, ["apihub.v1.ManifestIntake"])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, health_servicer
    server.stop(grace=None)


@pytest.mark.parametrize(("service", "variable"), [("ingest", "INGEST"), ("router", "DELIVERY")])
def test_health_asks_the_grpc_health_service_on_the_listen_address(grpc_server, service, variable):
    port, health_servicer = grpc_server
    # As in the containers: the service listens on 0.0.0.0; the check dials this host's loopback.
    answered = health(service, **{f"APIHUB_{variable}_LISTEN": f"0.0.0.0:{port}"})
    assert answered.exit_code == 0, answered.output
    assert f"{service} at 127.0.0.1:{port}: SERVING" in answered.output
    health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    refused = health(service, **{f"APIHUB_{variable}_LISTEN": f"0.0.0.0:{port}"})
    assert refused.exit_code == 1 and "NOT_SERVING" in refused.output


def test_health_fails_with_a_message_when_nothing_answers():
    result = health("ingest", APIHUB_INGEST_LISTEN=f"0.0.0.0:{free_port()}")
    assert result.exit_code == 1
    assert "ingest: no health answer at 127.0.0.1:" in result.output and "Traceback" not in result.output


@pytest.fixture
def metrics_page():
    """Serves a registry's /metrics on a free loopback port; returns the port."""
    servers = []

    def serve(registry: CollectorRegistry) -> int:
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        servers.append(server)
        return server.server_port

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_profiler_health_is_its_metrics_page(metrics_page):
    profiler = CollectorRegistry()
    Counter("apihub_profiler_manifests_consumed", "as the profiler exports it", registry=profiler).inc()
    port = metrics_page(profiler)
    result = health("profiler", APIHUB_PROFILER_METRICS_PORT=str(port))
    assert result.exit_code == 0, result.output
    assert f"profiler at http://127.0.0.1:{port}/metrics: metrics page up" in result.output


def test_profiler_health_fails_on_another_page_no_page_or_no_port(metrics_page):
    other = CollectorRegistry()
    Counter("apihub_router_hits_consumed", "another service's page", registry=other).inc()
    wrong = health("profiler", APIHUB_PROFILER_METRICS_PORT=str(metrics_page(other)))
    assert wrong.exit_code == 1 and "not with the profiler's metrics" in wrong.output
    nothing = health("profiler", APIHUB_PROFILER_METRICS_PORT=str(free_port()))
    assert nothing.exit_code == 1 and "profiler: no metrics page at http://127.0.0.1:" in nothing.output
    disabled = health("profiler", APIHUB_PROFILER_METRICS_PORT="-1")
    assert disabled.exit_code == 1 and "APIHUB_PROFILER_METRICS_PORT is -1" in disabled.output

"""The /metrics pages (no authentication) listen on APIHUB_METRICS_HOST, loopback unless the settings say otherwise."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.request import urlopen

import yaml

from services.config import HubSettings
from services.devkafka import free_port
from services.serving import serve_metrics, start_metrics

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def test_metrics_listen_on_loopback_by_default_on_a_fixed_port_too(caplog):
    assert HubSettings().metrics_host == "127.0.0.1"
    port = free_port()  # a configured port, as in production (port 0 was always loopback)
    with caplog.at_level(logging.INFO, logger="services.serving"):
        server = serve_metrics(port)
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            assert b"python_info" in page.read()
    finally:
        server.shutdown()
        server.server_close()
    assert f"metrics on http://127.0.0.1:{port}/metrics" in caplog.text


def test_metrics_host_comes_from_the_settings_and_anything_but_loopback_is_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("APIHUB_METRICS_HOST", "0.0.0.0")
    settings = HubSettings()
    assert settings.metrics_host == "0.0.0.0"
    with caplog.at_level(logging.INFO, logger="services.serving"):
        server = serve_metrics(0, settings.metrics_host)
    try:
        assert server.server_address[0] == "0.0.0.0"
    finally:
        server.shutdown()
        server.server_close()
    [record] = [r for r in caplog.records if "metrics on" in r.getMessage()]
    assert record.levelno == logging.WARNING and "without authentication" in record.getMessage()


def test_disabled_metrics_start_nothing():
    assert start_metrics(-1, "127.0.0.1") is None and serve_metrics(-1) is None


def test_compose_exposes_metrics_to_the_compose_network_only():
    spec = yaml.safe_load(COMPOSE.read_text())
    for name in ("ingest", "profiler", "router"):
        service = spec["services"][name]
        assert service["environment"]["APIHUB_METRICS_HOST"] == "0.0.0.0"  # Prometheus scrapes across containers
        published = {str(p).split(":")[-1] for p in service.get("ports", [])}
        assert not published & {"9464", "9465", "9466"}  # and the host does not publish them

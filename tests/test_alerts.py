"""The Prometheus alerts (deploy/prometheus/alerts.yml) and what they read.

Checked with Prometheus's own code: deploy/rulecheck, built here with Go from the module proxy and cached (the
first build takes a few minutes), parses the rules as `promtool check rules` does and runs their unit tests
(alerts.test.yml) as `promtool test rules` does. Then: every metric an alert selects is one the hub exports, every
alert has a severity and a runbook section that exists, the runbook names only real commands, and the gauges the
credential alerts read (certificate and token expiry) say what they should.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

import services
from services.auth import (
    TOKEN_EXPIRIES,
    Principal,
    TokenExpiries,
    authenticate,
    bearer,
    issue_token,
    verify_token,
)
from services.bus import kafka_ssl_context
from services.config import HubSettings
from services.errors import AuthError
from services.router.lag import lag_of
from services.tls import certificates_not_after, server_credentials, write_dev_certs

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
CHECKER = DEPLOY / "rulecheck"
RUNBOOK = ROOT / "docs" / "runbook.md"
# Downloading Prometheus's modules and compiling them takes minutes on a clean machine (once: then cached).
BUILD_TIMEOUT_S = 1500
# Series Prometheus makes itself for every scrape target.
SCRAPE_SERIES = {"up"}
# What each subject of issue 13's alerting asks for, by the metric its alert reads.
SUBJECTS = {
    "outbox lag": "apihub_router_outbox_lag",
    "dead letters": "apihub_router_dead_letters_total",
    "restarts under apihub up": "apihub_supervisor_restarts_total",
    "restarts elsewhere": "process_start_time_seconds",
    "consumer lag": "apihub_consumer_group_lag",
    "certificate expiry": "apihub_tls_certificate_expiry_seconds",
    "token expiry": "apihub_auth_token_expiry_seconds",
    "intake rejections": "apihub_ingest_manifests_total",
    "limit refusals": "apihub_limit_refusals_total",
    "audit": "apihub_audit_breaks_total",
}


def alerting_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def selected_metrics(expr: str) -> set[str]:
    """The metric names an expression selects, found by their shape (checked against Prometheus's parser below)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set(re.findall(r"\b((?:apihub|process|python)_[a-z0-9_]+)\b", without_strings))
    return names | ({"up"} if re.search(r"\bup\s*\{", without_strings) else set())


# -- the checker ----------------------------------------------------------------------------------------------------


def _checker_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(CHECKER.iterdir()):
        if path.suffix in (".go", ".mod", ".sum"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def rulecheck() -> Path:
    """deploy/rulecheck built once per version of its sources, in the user's cache (~/.cache/apihub)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed: the rules were not checked with Prometheus's parser (the tests below ran)")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "apihub"
    binary = cache / f"rulecheck-{_checker_digest()}"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache, prefix=".rulecheck-")
    os.close(fd)
    # GOTOOLCHAIN=local: never download a Go toolchain; -mod=readonly: go.sum must already hold every module;
    # -buildvcs=false: the binary needs no stamp of the repository's state.
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    try:
        built = subprocess.run(
            [go, "build", "-o", partial, "."],
            cwd=CHECKER,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        if built.returncode != 0:
            pytest.fail(f"building deploy/rulecheck failed:\n{built.stderr[-3000:]}")
        os.replace(partial, binary)  # atomic: a concurrent build of the same sources writes the same file
    finally:
        Path(partial).unlink(missing_ok=True)
    return binary


def run_checker(binary: Path, command: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), command, *map(str, files)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def checked(rulecheck) -> list[dict]:
    """The rules as Prometheus's rule parser read and validated them."""
    result = run_checker(rulecheck, "check", RULES)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.timeout(BUILD_TIMEOUT_S + 300)
def test_prometheus_accepts_the_rules(checked):
    assert [r["alert"] for r in checked] == [r["alert"] for r in alerting_rules()]
    assert all("record" not in r for r in checked)  # alerts only: no recording rules to keep in step


@pytest.mark.timeout(BUILD_TIMEOUT_S + 300)
def test_the_alerts_fire_as_their_unit_tests_say(rulecheck):
    result = run_checker(rulecheck, "test", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(BUILD_TIMEOUT_S + 300)
def test_the_checker_refuses_what_prometheus_would(rulecheck, tmp_path):
    """A checker that passes everything would prove nothing."""
    rule = "groups:\n- name: g\n  rules:\n  - alert: A\n"
    bad_expr = tmp_path / "expr.yml"
    bad_expr.write_text(rule + "    expr: sum by (member) (apihub_router_outbox_lag >\n")
    unknown_field = tmp_path / "field.yml"
    unknown_field.write_text(rule + "    expr: up == 0\n    severity: critical\n")
    bad_template = tmp_path / "template.yml"
    bad_template.write_text(rule + "    expr: up == 0\n    annotations: {summary: '{{ $labels.job '}\n")
    for path, says in ((bad_expr, "parse error"), (unknown_field, "severity"), (bad_template, "template")):
        result = run_checker(rulecheck, "check", path)
        assert result.returncode != 0, path.name
        assert says in result.stderr, result.stderr

    wrong = tmp_path / "wrong.test.yml"
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(RULES)]
    case = tests["tests"][0]["alert_rule_test"][1]  # ApihubServiceDown fires at 5m: say it does not
    assert case["exp_alerts"]
    case["exp_alerts"] = []
    wrong.write_text(yaml.safe_dump(tests))
    assert run_checker(rulecheck, "test", wrong).returncode != 0


@pytest.mark.timeout(BUILD_TIMEOUT_S + 300)
def test_the_metric_names_read_here_are_those_prometheus_finds(checked):
    by_alert = [(rule["alert"], selected_metrics(rule["expr"])) for rule in alerting_rules()]
    assert by_alert == [(r["alert"], set(r["metrics"])) for r in checked]


# -- what the rules read --------------------------------------------------------------------------------------------


def exported_series() -> set[str]:
    """The series names the hub's processes can export: every collector that importing every runtime module
    registers (the services, `apihub up`'s supervisor, the process and Python collectors), by metric type."""
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.startswith("services.wire"):
            importlib.import_module(module.name)
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
        "unknown": ("",),
    }
    return {family.name + end for family in REGISTRY.collect() for end in suffixes[family.type]}


def test_every_metric_an_alert_reads_is_one_the_hub_exports():
    exported = exported_series() | SCRAPE_SERIES
    for rule in alerting_rules():
        unknown = selected_metrics(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} reads {sorted(unknown)}, which no hub process exports"


def test_the_alerts_cover_every_subject_of_the_issue():
    read = set().union(*(selected_metrics(rule["expr"]) for rule in alerting_rules()))
    missing = {subject for subject, metric in SUBJECTS.items() if metric not in read}
    assert not missing


def test_the_jobs_the_alerts_name_are_scraped():
    """The scrape jobs of both Prometheus configurations are those the alerts' selectors name."""
    for config in ("prometheus.yml", "prometheus-local.yml"):
        jobs = {job["job_name"] for job in yaml.safe_load((DEPLOY / config).read_text())["scrape_configs"]}
        assert {"apihub-ingest", "apihub-profiler", "apihub-router"} <= jobs, config
    exprs = " ".join(rule["expr"] for rule in alerting_rules())
    assert 'job="apihub-profiler"' in exprs and "apihub-(ingest|profiler|router)" in exprs


def test_prometheus_loads_the_rules_in_docker_compose_and_beside_apihub_up():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in compose["services"]["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    for config in ("prometheus.yml", "prometheus-local.yml"):
        [rule_file] = yaml.safe_load((DEPLOY / config).read_text())["rule_files"]
        # Relative to the configuration file: in the repository, and in the container beside its mounted copy.
        assert (DEPLOY / rule_file).resolve() == RULES
        assert mounts[f"./{RULES.relative_to(ROOT)}"] == f"/etc/prometheus/{rule_file}"


# -- severity, annotations, runbook ---------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Anchor -> text of each section of docs/runbook.md."""
    sections: dict[str, str] = {}
    anchor = ""
    for line in RUNBOOK.read_text().splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            anchor = github_anchor(heading[1])
            sections[anchor] = ""
        elif anchor:
            sections[anchor] += line + "\n"
    return sections


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section():
    sections = runbook_sections()
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/runbook.md", name
        assert anchor == name.lower(), name
        text = sections.get(anchor, "")
        assert "**Means.**" in text and "**Check.**" in text and "**Do.**" in text, f"runbook section of {name}"


def test_the_runbook_has_a_section_for_no_alert_that_does_not_exist():
    names = {rule["alert"].lower() for rule in alerting_rules()}
    alert_like = {anchor for anchor in runbook_sections() if anchor.startswith("apihub")}
    assert alert_like == names


def _apihub_commands(text: str) -> list[list[str]]:
    """The words of every `apihub ...` command the text shows in code (inline or fenced)."""
    code = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text)]  # a span may wrap a line
    return [span.split()[span.split().index("apihub") :] for span in code if "apihub" in span.split()]


def _check_command(root, words: list[str]) -> None:
    """Every subcommand and option of an `apihub` command line exists; values and arguments are skipped. (Typer
    carries its own copy of click: commands are told from groups by their ``commands``.)"""
    command, rest = root, words[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        if word.startswith("--"):
            params = {opt: param for param in command.params for opt in param.opts + param.secondary_opts}
            assert word in params, f"`{' '.join(words)}`: no option {word} there"
            if not params[word].is_flag and rest:
                rest = rest[1:]  # its value
        elif hasattr(command, "commands") and re.fullmatch(r"[a-z][a-z-]*", word):
            assert word in command.commands, f"`{' '.join(words)}`: no command {word} there"
            command = command.commands[word]
        # else: an argument (a service name, a directory)


def test_the_runbook_names_only_commands_and_options_that_exist():
    from services.cli import app

    root = typer.main.get_command(app)
    commands = _apihub_commands(RUNBOOK.read_text())
    assert ["apihub", "hits", "follow", "--member", "TON", "--reader", "cli"] in commands  # the parser finds them
    for words in commands:
        _check_command(root, words)


# -- the gauges behind the credential alerts ------------------------------------------------------------------------


def _not_after(pem_path: Path) -> float:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem_path.read_bytes()).not_valid_after_utc.timestamp()


def test_a_server_reports_when_its_certificates_expire(tmp_path):
    written = {f.path.name: f.path for f in write_dev_certs(tmp_path / "a", days=30)}
    sooner = {f.path.name: f.path for f in write_dev_certs(tmp_path / "b", days=10)}
    # A chain file whose second certificate expires before the leaf: the soonest counts.
    chain = tmp_path / "chain.pem"
    chain.write_bytes(written["server.pem"].read_bytes() + sooner["ca.pem"].read_bytes())
    settings = HubSettings(
        tls_cert_file=chain, tls_key_file=written["server-key.pem"], tls_client_ca_file=written["ca.pem"]
    )
    assert server_credentials(settings) is not None
    server = REGISTRY.get_sample_value("apihub_tls_certificate_expiry_seconds", {"certificate": "grpc_server"})
    client_ca = REGISTRY.get_sample_value("apihub_tls_certificate_expiry_seconds", {"certificate": "grpc_client_ca"})
    assert server == _not_after(sooner["ca.pem"]) < _not_after(written["server.pem"])
    assert client_ca == _not_after(written["ca.pem"])
    assert certificates_not_after(b"not a certificate") is None


def test_the_kafka_clients_report_when_their_certificates_expire(tmp_path):
    written = {f.path.name: f.path for f in write_dev_certs(tmp_path, members=["FJI"], days=10)}
    kafka_ssl_context(
        HubSettings(
            kafka_bootstrap="broker.example:9093",
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=written["ca.pem"],
            kafka_ssl_cert_file=written["member-FJI.pem"],
            kafka_ssl_key_file=written["member-FJI-key.pem"],
        )
    )
    for label, pem in (("kafka_ca", "ca.pem"), ("kafka_client", "member-FJI.pem")):
        value = REGISTRY.get_sample_value("apihub_tls_certificate_expiry_seconds", {"certificate": label})
        assert value == _not_after(written[pem])


def test_token_expiry_is_the_soonest_of_the_tokens_presented_in_the_last_hour():
    now = [1_000_000.0]
    expiries = TokenExpiries(window_s=3600, clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(expiries)

    def gauge(kind: str, code: str) -> float | None:
        return registry.get_sample_value("apihub_auth_token_expiry_seconds", {"kind": kind, "principal": code})

    expiries.presented(Principal("carrier", "FJ", token_id="old", expires_at=2_000_000))
    expiries.presented(Principal("carrier", "FJ", token_id="new", expires_at=9_000_000))
    expiries.presented(Principal("member", "TON", token_id="t1", expires_at=3_000_000))
    assert gauge("carrier", "FJ") == 2_000_000  # the one that expires first, while both are in use
    assert gauge("member", "TON") == 3_000_000

    now[0] += 1800
    expiries.presented(Principal("carrier", "FJ", token_id="new", expires_at=9_000_000))
    now[0] += 1801  # the old token was last seen more than an hour ago; TON called no more
    assert gauge("carrier", "FJ") == 9_000_000
    assert gauge("member", "TON") is None


class _Refused(Exception):
    pass


class _Context:
    def __init__(self, token: str = ""):
        self._metadata = tuple(bearer(token)) if token else ()

    def invocation_metadata(self):
        return self._metadata

    def abort(self, code, details):
        raise _Refused(f"{code}: {details}")


def _refusals(kind: str, reason: str, principal: str = "") -> float:
    labels = {"kind": kind, "reason": reason, "principal": principal}
    return REGISTRY.get_sample_value("apihub_auth_refusals_total", labels) or 0.0


def test_authentication_counts_expired_tokens_by_whom_they_name_and_records_good_ones():
    secret = "a test secret that is long enough to sign tokens"
    issued = datetime.now(UTC) - timedelta(days=2)
    expired = issue_token(secret, "carrier", "NR", lifetime=timedelta(days=1), now=issued)
    forged = issue_token("another secret, long enough as well", "carrier", "NR")
    before = (_refusals("carrier", "expired", "NR"), _refusals("carrier", "invalid"), _refusals("carrier", "missing"))
    for token in (expired, forged, ""):
        with pytest.raises(_Refused):
            authenticate(_Context(token), secret, "carrier")
    after = (_refusals("carrier", "expired", "NR"), _refusals("carrier", "invalid"), _refusals("carrier", "missing"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]

    good = issue_token(secret, "carrier", "NR", lifetime=timedelta(days=5))
    principal = authenticate(_Context(good), secret, "carrier")
    assert TOKEN_EXPIRIES.soonest()[("carrier", "NR")] == principal.expires_at
    assert principal.expires_at == pytest.approx(time.time() + 5 * 86400, abs=120)


def test_an_unverified_token_never_names_the_refusal():
    """Only a token the hub signed may put a code into the metrics: a forged one claiming any code does not."""
    secret = "a test secret that is long enough to sign tokens"
    forged = issue_token("another secret, long enough as well", "carrier", "ZZ", lifetime=timedelta(seconds=1))
    with pytest.raises(AuthError, match="signature"):
        verify_token(secret, forged)
    with pytest.raises(_Refused):
        authenticate(_Context(forged), secret, "carrier")
    assert _refusals("carrier", "expired", "ZZ") == 0
    assert _refusals("carrier", "invalid", "ZZ") == 0


# -- lag ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "start", "committed", "lag"),
    [
        (10, 0, None, 10),  # never committed: everything kept
        (10, 0, -1, 10),
        (10, 0, 7, 3),
        (10, 8, 3, 2),  # retention removed records it never read: it resumes at the log start
        (10, 0, 10, 0),
        (5, 5, None, 0),
    ],
)
def test_lag_counts_from_the_resume_point(end, start, committed, lag):
    assert lag_of(end, start, committed) == lag

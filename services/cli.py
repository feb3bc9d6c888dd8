"""`apihub`: the one command for running the hub, carriers' submissions, members' hits and development."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import grpc
import typer
from google.protobuf import json_format
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services import client
from services.board_cli import policy_app
from services.codec import hit_to_json
from services.config import HubSettings
from services.console.users_cli import users_app
from services.errors import ConfigError, HubError
from services.profiler.model_cli import model_app
from services.profiler.rules_cli import rules_app
from services.terminal import printable
from services.userfiles import InputFileError, read_text
from services.wire import delivery_pb2, hit_pb2, intake_pb2

if TYPE_CHECKING:
    from services.profiler.watchlist import WatchlistStore

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
dev_app = typer.Typer(
    help="Development helpers: demo credentials and certificates, code generation, demo files.", no_args_is_help=True
)
watchlist_app = typer.Typer(help="Members' watchlists.", no_args_is_help=True)
hits_app = typer.Typer(help="Members' hits.", no_args_is_help=True)
kafka_app = typer.Typer(help="The local single-node Kafka broker for development.", no_args_is_help=True)
carriers_app = typer.Typer(help="Carriers' submissions (operators).", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(hits_app, name="hits")
app.add_typer(kafka_app, name="kafka")
app.add_typer(carriers_app, name="carriers")
app.add_typer(rules_app, name="rules")
app.add_typer(policy_app, name="policy")
app.add_typer(model_app, name="model")
app.add_typer(users_app, name="users")


ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="host:port of the hub (default from settings). TLS: APIHUB_TLS_* or `apihub --tls-ca ...`, "
        "see `apihub --help`",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="APIHUB_TOKEN", help="Bearer token (env APIHUB_TOKEN); see `apihub dev token`"),
]


TLS_HELP = (
    "TLS: the servers (`serve`, `up`) listen with TLS when APIHUB_TLS_CERT_FILE and APIHUB_TLS_KEY_FILE are set, "
    "and require client certificates (mutual TLS) when APIHUB_TLS_CLIENT_CA_FILE is set too. The commands that "
    "connect (submit, check, watchlist load, hits follow, hits dispose, hits override, rules load, policy load) "
    "use TLS when APIHUB_TLS_CA_FILE, "
    "APIHUB_TLS_CLIENT_CERT_FILE and _KEY_FILE, or APIHUB_TLS=true are set, or with the --tls-* options below, "
    "given before the command: `apihub --tls-ca ca.pem hits follow --member FJI`. "
    "`apihub dev certs --out DIR` writes throwaway certificates to try it."
)

# Printed beside a hit marked for_review (`hits follow`, `screen`): only review-band watchlist matches and/or the
# risk model's ranking, for a human to check before acting.
REVIEW_MARKER = "[REVIEW]"

# Settings given as global options (`apihub --tls-ca FILE hits follow ...`): they win over APIHUB_* variables.
_overrides: dict[str, object] = {}


@app.callback(help=__doc__ + "\n\n" + TLS_HELP)
def main(
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-ca",
            help="Connect with TLS, verifying the hub's certificate against this CA (PEM) (or env APIHUB_TLS_CA_FILE)",
            dir_okay=False,
        ),
    ] = None,
    tls_client_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-cert",
            help="Client certificate (PEM) for a hub that requires mutual TLS (or env APIHUB_TLS_CLIENT_CERT_FILE)",
            dir_okay=False,
        ),
    ] = None,
    tls_client_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-key",
            help="Its private key (PEM, unencrypted) (or env APIHUB_TLS_CLIENT_KEY_FILE)",
            dir_okay=False,
        ),
    ] = None,
    tls_server_name: Annotated[
        str | None,
        typer.Option(
            "--tls-server-name",
            help="Name the hub's certificate must carry, if not the host dialled (or env APIHUB_TLS_SERVER_NAME)",
        ),
    ] = None,
) -> None:
    """Global options: TLS for the commands that connect to the hub (see TLS_HELP)."""
    given = {
        "tls_ca_file": tls_ca,
        "tls_client_cert_file": tls_client_cert,
        "tls_client_key_file": tls_client_key,
        "tls_server_name": tls_server_name,
    }
    _overrides.clear()
    _overrides.update({name: value for name, value in given.items() if value is not None})


def _settings() -> HubSettings:
    try:
        return HubSettings(**_overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"APIHUB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        _fail(f"bad settings: {problems}")
    except SettingsError as exc:  # e.g. APIHUB_SCREENING_BANDS that is not JSON
        _fail(f"bad settings: {exc}")


def _channel(settings: HubSettings, address: str) -> grpc.Channel:
    """A channel to the hub as the settings say: TLS, mutual TLS, or plain text."""
    try:
        return client.channel_for(settings, address)
    except ConfigError as exc:
        _fail(f"bad settings: {exc}")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(printable(f"apihub: {message}"), err=True)
    raise typer.Exit(code)


def _need_token(token: str | None, hint: str) -> str:
    if not token:
        _fail(f"a token is required: pass --token or set APIHUB_TOKEN (demo: `apihub dev token {hint}`)")
    return token


def _as_member(member: str, token: str | None) -> tuple[HubSettings, str, str]:
    """Settings, the member code and its token, for a command a member runs."""
    member = member.upper()
    return _settings(), member, _need_token(token, f"--member {member}")


def _rpc_error(exc: grpc.RpcError) -> None:
    _fail(f"{exc.code().name}: {exc.details()}", 3 if exc.code() == grpc.StatusCode.UNAVAILABLE else 2)


def _from_settings_file(setting: str, load, *args):
    """What ``load(*args)`` reads from a settings file (APIHUB_DIRECTORY_FILE, APIHUB_SHARING_FILE); exit 2 with a
    clear message, not a traceback, when the file cannot be used."""
    import yaml

    try:
        return load(*args)
    except (ConfigError, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
        _fail(f"bad settings: {setting}: {reason[:500]}")


EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Encoding of the watchlist CSV when it is neither UTF-8 nor UTF-16 with a byte order mark (files from "
        "older systems: latin-1, cp1252)",
    ),
]


# -- running the hub -------------------------------------------------------------------------------------
@app.command()
def up(
    demo: Annotated[
        bool,
        typer.Option(
            help="Load demo watchlists, feed demo manifests, print members' hits (the demo comes with a source "
            "checkout: an install without it runs as --no-demo)"
        ),
    ] = True,
    interval: Annotated[float, typer.Option(help="Seconds between demo manifests")] = 2.0,
    exit_after: Annotated[float | None, typer.Option(help="Stop by itself after this many seconds")] = None,
) -> None:
    """Run the whole hub: Kafka (local unless APIHUB_KAFKA_BOOTSTRAP is set), ingest, profiler, router. A service
    or the local broker that exits is started again (APIHUB_SUPERVISOR_*); one that keeps exiting stops the hub
    (exit status 1). `apihub status` shows what runs."""
    from services.checkout import DevCodeMissingError, import_dev
    from services.launcher import Hub, stop_on_signals, warn_if_demo_secret
    from services.supervisor import SupervisionError

    settings = _settings()
    say = lambda line: typer.echo(line)  # noqa: E731
    run_demo = None
    if demo:  # dev code (synthetic/), imported only when the demo runs: the Docker image has none of it
        try:
            run_demo = import_dev("synthetic.demo", "the demo").run_demo
        except DevCodeMissingError:
            say(
                "This install has no demo (synthetic/): running as --no-demo. For the demo, clone the repository "
                "and run `make demo` there."
            )
    warn_if_demo_secret(settings, say)
    hub, stop, failure = Hub(settings, say), threading.Event(), None
    timer = threading.Timer(exit_after, stop.set) if exit_after is not None else None
    with stop_on_signals(stop):  # Ctrl-C and SIGTERM stop the hub cleanly, even while it starts
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            hub.start(stop)
        except HubError as exc:
            _fail(str(exc))
        worker = _start_demo(run_demo, hub, stop, interval, say)
        try:
            hub.supervise(stop)
        except SupervisionError as exc:
            failure = exc
        finally:
            stop.set()
            if timer is not None:
                timer.cancel()
            if worker:
                worker.join(10)
            say("Stopping services...")
            hub.stop()
            say("Hub stopped.")
    if failure is not None:
        _fail(f"{failure}", 1)


def _start_demo(run_demo, hub, stop: threading.Event, interval: float, say) -> threading.Thread | None:
    """The demo's traffic in a thread, or None without a demo."""
    if run_demo is None:
        say("Ctrl-C stops the hub.")
        return None

    def demo_loop() -> None:
        try:
            run_demo(hub, stop, interval, say)
        except (HubError, grpc.RpcError) as exc:
            if not stop.is_set():
                say(f"demo stopped: {exc}")

    worker = threading.Thread(target=demo_loop, daemon=True, name="demo")
    worker.start()
    say("Demo traffic running; hits appear below as members' contact points receive them. Ctrl-C stops.")
    return worker


class Service(StrEnum):
    ingest = "ingest"
    profiler = "profiler"
    router = "router"
    console = "console"


@app.command()
def serve(service: Service) -> None:
    """Run one service in the foreground (what `apihub up` and docker-compose start)."""
    from services.serving import configure_logging

    configure_logging()
    settings = _settings()
    from services.bus import kafka_client_options

    try:  # unusable Kafka TLS or SASL files: a clear message now, not a traceback from the first client
        kafka_client_options(settings)
    except ConfigError as exc:
        _fail(f"bad settings: {exc}")
    if service is not Service.profiler:
        from services.tls import server_credentials

        try:  # unusable TLS files: a clear message now, not a traceback once the service is half up
            server_credentials(settings)
        except ConfigError as exc:
            _fail(f"bad settings: {exc}")
    else:
        from services.profiler.watchlist import traveller_names

        try:  # the same for the table of traveller names the profiler weighs names by
            traveller_names(settings)
        except ConfigError as exc:
            _fail(f"bad settings: {exc}")
    if service is Service.ingest:
        from services.api_ingest.server import run_ingest

        run_ingest(settings)
    elif service is Service.profiler:
        from services.profiler.worker import run_profiler

        run_profiler(settings)
    elif service is Service.console:
        from services.console.server import run_console

        run_console(settings)
    else:
        from services.router.server import run_router

        run_router(settings)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="The status as one JSON object (running, stale)")] = False,
) -> None:
    """What the hub `apihub up` runs from this state directory (APIHUB_STATE_DIR) is doing: each service and the
    local broker, its state, pid, since when, its restarts and last exit. Exit status 0: everything up; 1: the hub
    runs but something is down (restarting); 3: no hub runs (none started, stopped, or its supervisor is gone)."""
    from services.supervisor import STATUS_FILE, read_status, status_lines

    found = read_status(_settings().state_dir / STATUS_FILE)
    if as_json:
        typer.echo(json.dumps(found.as_json()))
    else:
        for line in status_lines(found):
            typer.echo(printable(line))
    if not found.running:
        raise typer.Exit(3)
    if not found.all_up:
        raise typer.Exit(1)


@app.command()
def health(
    service: Service,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer")] = 5.0,
) -> None:
    """Check one service on this host, as docker-compose's healthcheck does: ingest and router answer the gRPC
    health service on their listen address (with the client TLS settings), the profiler serves its metrics page
    (APIHUB_PROFILER_METRICS_PORT). Exit status 0 when it answers, 1 with the reason when not."""
    from services.launcher import check_health

    settings = _settings()
    try:
        typer.echo(check_health(settings, service.value, timeout))
    except HubError as exc:
        _fail(str(exc), 1)


@kafka_app.command("run")
def kafka_run() -> None:
    """Run the local broker in the foreground on APIHUB_KAFKA_PORT and create the hub's topics."""
    from services.bus import ensure_topics
    from services.devkafka import LocalKafka
    from services.directory import load_directory
    from services.serving import wait_for_signal

    settings = _settings()
    kafka = LocalKafka(settings.state_dir / "kafka", settings.kafka_port, settings.kafka_controller_port)
    try:
        kafka.start()
        ensure_topics(
            settings.model_copy(update={"kafka_bootstrap": kafka.bootstrap}),
            load_directory(settings.directory_file).codes,
        )
    except HubError as exc:
        kafka.stop()
        _fail(str(exc))
    typer.echo(f"Kafka ready at {kafka.bootstrap} (log: {kafka.log_file}). Ctrl-C stops it.")
    wait_for_signal(kafka.stop)


@app.command()
def topics() -> None:
    """Create the hub's topics on the configured Kafka cluster, and apply the settings (retention, replicas) to those
    that exist; says what it created and changed (idempotent)."""
    from kafka.errors import KafkaError

    from services.bus import apply_topic_specs
    from services.directory import load_directory

    settings = _settings()
    directory = _from_settings_file("APIHUB_DIRECTORY_FILE", load_directory, settings.directory_file)
    try:
        report = apply_topic_specs(settings, directory.codes)
    except HubError as exc:  # unusable Kafka settings (2), or no broker to be reached with them (3)
        _fail(str(exc), 3 if exc.retriable else 2)
    except KafkaError as exc:
        _fail(f"Kafka: {type(exc).__name__}: {exc}", 3)
    typer.echo("\n".join(report.lines()) or "all topics exist, as the settings say")
    if report.problems:
        raise typer.Exit(1)


@app.command()
def purge(
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Delete what is older than this, e.g. 2026-01-31 (midnight UTC) or 2026-01-31T12:00:00+12:00",
            show_default=False,
        ),
    ] = None,
    expired_notes: Annotated[
        bool,
        typer.Option(
            "--expired-notes",
            help="Only strip the notes of dispositions older than APIHUB_DISPOSITION_NOTE_RETENTION_DAYS (run daily)",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go")] = False,
) -> None:
    """Delete what is older than a date from every topic the hub owns (operators): records by time, tombstones on
    tables, dispositions kept without their notes when notes are kept shorter. Watchlists and rules are kept. The
    hub keeps running: consumers and members' cursors below the new log starts resume there."""
    from datetime import UTC, datetime, timedelta

    from kafka.errors import KafkaError

    from services.directory import load_directory
    from services.purge import labels_note, parse_before
    from services.purge import purge as run_purge

    if (before is not None) == expired_notes:
        _fail("give either --before DATE or --expired-notes")
    settings = _settings()
    if expired_notes:
        if not settings.notes_kept_shorter:
            typer.echo("Dispositions' notes are kept as long as the dispositions: retention removes them together.")
            return
        when = datetime.now(UTC) - timedelta(days=settings.disposition_note_retention_days)
    else:
        try:
            when = parse_before(before)
        except ValueError as exc:
            _fail(str(exc))
    directory = _from_settings_file("APIHUB_DIRECTORY_FILE", load_directory, settings.directory_file)
    say = lambda line: typer.echo(line)  # noqa: E731
    try:
        results = run_purge(settings, directory.codes, when, dry_run=dry_run, notes_only=expired_notes, say=say)
    except HubError as exc:
        _fail(str(exc), 3 if exc.retriable else 2)
    except KafkaError as exc:
        _fail(f"Kafka: {type(exc).__name__}: {exc}", 3)
    verb = "would delete" if dry_run else "deleted"
    deleted = sum(r.deleted for r in results)
    typer.echo(f"{'Dry run: ' if dry_run else ''}{verb} {deleted} records older than {when.isoformat()}.")
    note = labels_note(results, settings, when)
    if note and not expired_notes:
        typer.echo(note)
    if not dry_run and deleted:
        typer.echo(
            "Deleted records are unreadable now. The broker removes them from disk with their log segment, once that "
            f"has rolled (APIHUB_TOPIC_SEGMENT_HOURS={settings.topic_segment_hours}, at the next record written after "
            "that) and its retention check has run (log.retention.check.interval.ms, 5 minutes by default)."
        )


BackupDirArg = Annotated[Path, typer.Argument(help="The backup's directory", file_okay=False)]


@app.command("backup")
def backup_command(directory: BackupDirArg) -> None:
    """Back up what lives only in Kafka (operators): members' current watchlists and rule files, dispositions and the
    audit trail, one file per topic and a manifest.json with their SHA-256, into a new or empty DIR. The files hold
    personal data: DIR is made 0700 and each file 0600. Travellers' data, the intake index and delivery records are
    not backed up; the directory, sharing policy, model and keys are files (see services/backup.py)."""
    from kafka.errors import KafkaError

    from services.backup import backup

    settings = _settings()
    say = lambda line: typer.echo(printable(line))  # noqa: E731
    try:
        manifest = backup(settings, directory, say=say)
    except HubError as exc:  # no such topic, a directory in the way (2), or no broker to be reached (3)
        _fail(str(exc), 3 if exc.retriable else 2)
    except KafkaError as exc:
        _fail(f"Kafka: {type(exc).__name__}: {exc}", 3)
    trail = manifest["audit"] or {}
    if trail.get("checkpoint"):
        say(f"audit trail checkpoint at backup time: {trail['checkpoint']}")
    if trail.get("breaks"):
        say(f"warning: the audit trail breaks at offset {trail['breaks'][0]['offset']} (see `apihub audit verify`)")
    total = sum(part["records"] for part in manifest["parts"].values())
    say(f"Backed up {total} records to {directory} (personal data: keep it where only operators can read it).")


@app.command("restore")
def restore_command(
    directory: BackupDirArg,
    force: Annotated[
        bool, typer.Option("--force", help="Append to topics that hold records (the backup's lists become current)")
    ] = False,
    skip_audit: Annotated[
        bool,
        typer.Option("--skip-audit", help="Restore all but the audit trail (e.g. one with a break: it stays in DIR)"),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check the backup and the target topics")] = False,
) -> None:
    """Restore a backup (`apihub backup`) into the topics of the settings' APIHUB_TOPIC_PREFIX, e.g. on a fresh
    broker (operators). Checks first, writing nothing otherwise: each file's SHA-256 against manifest.json, the
    backup's audit trail against its seals (with the hub's key ring), and that the target topics are empty. The audit
    events are restored without their old seals and sealed anew. Exit status 2 when refused, 3 when Kafka fails."""
    from kafka.errors import KafkaError

    from services.backup import restore
    from services.directory import load_directory

    settings = _settings()
    directory_file = _from_settings_file("APIHUB_DIRECTORY_FILE", load_directory, settings.directory_file)
    say = lambda line: typer.echo(printable(line))  # noqa: E731
    try:
        report = restore(
            settings, directory, directory_file.codes, force=force, skip_audit=skip_audit, dry_run=dry_run, say=say
        )
    except HubError as exc:
        _fail(str(exc), 3 if exc.retriable else 2)
    except KafkaError as exc:
        _fail(f"Kafka: {type(exc).__name__}: {exc}", 3)
    total = sum(report.written.values())
    if dry_run:
        say(f"Dry run: the backup is sound; a restore would write {total} records.")
        return
    if report.checkpoint:
        say(f"restored audit trail checkpoint: {report.checkpoint} (keep it outside the hub; audit verify --since)")
    say(f"Restored {total} records into the topics of prefix {settings.topic_prefix}.")


# -- carriers --------------------------------------------------------------------------------------------
def _receipt_json(receipt: intake_pb2.Receipt, source: str) -> dict:
    out = json_format.MessageToDict(
        receipt, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    out["status"] = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_").lower()
    out["file"] = source
    return out


def _print_receipt(answer: client.Answer, as_json: bool) -> None:
    receipt = answer.receipt
    if as_json:
        typer.echo(json.dumps(_receipt_json(receipt, answer.source)))
        return
    status = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_")
    counts = f"({receipt.passengers} passengers, {receipt.crew} crew)"
    typer.echo(printable(f"{answer.source}: {status} {receipt.manifest_id} {counts}"))
    for kind, violations in (("error  ", receipt.errors), ("warning", receipt.warnings)):
        for v in violations:
            where = " ".join(x for x in (v.segment, v.field) if x)
            typer.echo(printable(f"  {kind} {where}: {v.description} [{v.code}]"))


def _submit_stopped(stop: client.SubmitStoppedError, total: int, as_json: bool) -> None:
    """Name the files not acknowledged and how to go on; exit 3 (retry later) or 2 (fix something first)."""
    import shlex

    files = stop.unacknowledged
    if as_json:
        for name in files:
            typer.echo(json.dumps({"file": name, "status": "not_acknowledged", "error": str(stop)}))
    others = " (the other files were answered by the receipts above)" if len(files) < total else ""
    when = "" if stop.retriable else ", once the cause is fixed"
    for line in (
        f"apihub: {stop}",
        f"apihub: {len(files)} of {total} files not acknowledged{others}: {' '.join(files)}",
        f"apihub: send only these again{when}, with the same options (a message of them may be stored without its "
        f"receipt reaching here: it is answered DUPLICATE): apihub submit {shlex.join(files)}",
    ):
        typer.echo(printable(line), err=True)
    raise typer.Exit(3 if stop.retriable else 2)


@app.command()
def submit(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Manifest files: UN/EDIFACT PAXLST interchanges (.edi, .txt), or the JSON form of "
            "apihub.v1.Manifest; the format is read from the content",
            exists=True,
            dir_okay=False,
        ),
    ],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON receipt per message; one JSON line per file not acknowledged")
    ] = False,
) -> None:
    """Send manifests in the order given; print each message's receipt as it arrives. When a call fails, name the
    files not acknowledged: send only those again (a message already stored is answered DUPLICATE). Exit status: 0
    every message accepted or duplicate; 1 some rejected (every message answered); 3 some files not acknowledged
    because the hub or its broker was unavailable, the connection was lost, the deadline passed
    (APIHUB_SUBMIT_TIMEOUT_SECONDS) or a limit was reached: send them again later; 2 some files not acknowledged for
    another reason (credentials, permission): fix it, then send them again."""
    settings = _settings()
    token = _need_token(token, "--carrier XX")
    chan = _channel(settings, server or settings.ingest_listen)
    names = [str(path) for path in files]
    submission = client.Submission(chan, token, names, settings.submit_timeout_seconds)
    ok = (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE)
    rejected = False
    try:
        for answer in submission.answers():
            _print_receipt(answer, as_json)
            rejected = rejected or answer.receipt.status not in ok
    except client.SubmitStoppedError as stop:
        _submit_stopped(stop, len(names), as_json)
    if rejected:
        raise typer.Exit(1)


@app.command()
def check(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="iAPI messages: UN/EDIFACT PAXLST interchanges (.edi, .txt), or the JSON form of apihub.v1.Manifest "
            "naming the flight and the travellers at check-in; the format is read from the content",
            exists=True,
            dir_okay=False,
        ),
    ],
    server: Annotated[
        str | None, typer.Option("--server", help="host:port of the hub's interactive checks (APIHUB_CHECK_LISTEN)")
    ] = None,
    token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per traveller")] = False,
    cusres: Annotated[
        Path | None,
        typer.Option("--cusres", help="Write the CUSRES answers of PAXLST files here (appended, one per file)"),
    ] = None,
) -> None:
    """Check travellers as a carrier's departure control system does at check-in, and print each traveller's
    directive: OK_TO_BOARD, DO_NOT_BOARD, CONTACT_AUTHORITY, or INSUFFICIENT_DATA with the missing fields. Exit
    status: 0 every traveller may board; 1 some may not (any other directive); 2 a file could not be checked (its
    problem is printed); 3 the hub did not answer (unavailable, deadline, check rate)."""
    import grpc

    from services.wire import check_pb2

    settings = _settings()
    token = _need_token(token, "--carrier XX")
    chan = _channel(settings, server or settings.check_listen)
    worst = 0
    for path in files:
        try:
            checked = client.check_file(chan, token, str(path), settings.max_message_bytes)
        except grpc.RpcError as exc:
            typer.echo(printable(f"apihub: {path}: {exc.code().name}: {exc.details()}"), err=True)
            worst = max(worst, 3)
            continue
        for problem in checked.errors:
            typer.echo(printable(f"{path}: {problem}"), err=True)
            worst = max(worst, 2)
        for n, answer in enumerate(checked.checks):
            source = f"{path}#{n + 1}" if len(checked.checks) > 1 else str(path)
            for v in answer.errors:
                typer.echo(printable(f"{source}: error {v.segment or v.field}: {v.description} [{v.code}]"), err=True)
            for a in answer.answers:
                name = check_pb2.Directive.Name(a.directive).removeprefix("DIRECTIVE_")
                worst = max(worst, 0 if a.directive == check_pb2.DIRECTIVE_OK_TO_BOARD else 1)
                if as_json:
                    line = {
                        "file": source,
                        "check_id": answer.check_id,
                        "index": a.index,
                        "passenger_ref": a.passenger_ref,
                        "directive": name,
                        "missing_fields": list(a.missing_fields),
                        "message": a.message,
                        "fallback": answer.fallback,
                    }
                    typer.echo(json.dumps(line))
                    continue
                who = a.passenger_ref or f"traveller {a.index}"
                missing = f" (missing: {', '.join(a.missing_fields)})" if a.missing_fields else ""
                fallback = " [fallback: the hub could not screen in time]" if answer.fallback else ""
                typer.echo(printable(f"{source}: {who}: {name}{missing} - {a.message}{fallback}"))
        if cusres is not None and checked.cusres:
            with open(cusres, "ab") as out:
                out.write(checked.cusres + b"\n")
    if worst:
        raise typer.Exit(worst)


# -- members ---------------------------------------------------------------------------------------------
class Scope(StrEnum):
    regional = "regional"
    private = "private"


@watchlist_app.command("load")
def watchlist_load(
    file: Annotated[
        Path, typer.Argument(help="CSV: " + ",".join(client.WATCHLIST_COLUMNS), exists=True, dir_okay=False)
    ],
    member: Annotated[str, typer.Option("--member", help="Owner member, ISO 3166-1 alpha-3")],
    scope: Annotated[
        Scope, typer.Option(help="regional: screens every flight; private: only the owner's jurisdiction")
    ] = Scope.regional,
    server: ServerOpt = None,
    token: TokenOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Replace a member's watchlist with the entries of a CSV file (UTF-8, UTF-16 with a byte order mark, or
    --encoding; at most APIHUB_WATCHLIST_FILE_MAX_BYTES)."""
    settings, member, token = _as_member(member, token)
    try:
        entries = client.read_watchlist_file(file, member, settings.watchlist_file_max_bytes, encoding)
    except client.WatchlistFileError as exc:
        _fail(f"{file}: {exc}")
    scope_value = (
        delivery_pb2.WATCHLIST_SCOPE_PRIVATE if scope is Scope.private else delivery_pb2.WATCHLIST_SCOPE_REGIONAL
    )
    try:
        reply = client.load_watchlist(
            _channel(settings, server or settings.delivery_listen), token, member, entries, scope_value
        )
    except grpc.RpcError as exc:
        _rpc_error(exc)
    if reply.errors:
        for v in reply.errors:
            typer.echo(printable(f"  error {v.field}: {v.description} [{v.code}]"), err=True)
        _fail(f"watchlist not loaded: {len(reply.errors)} errors", 1)
    typer.echo(f"Loaded {reply.entries} entries into the {scope.value} watchlist of {member}.")


def follow_lines(h: dict) -> list[str]:
    """The text form of one hit (its JSON form, codec.hit_to_json) that `apihub hits follow` prints: a head line,
    marked REVIEW_MARKER when the hit is for review, then one line per reason with its screening band, if any."""
    f, p = h["flight"], h["passenger"]
    flight = f"{f['carrier']}{f['number']} {'-'.join(f['route'])} {f['departure']}"
    if h["state"] == "withdrawn":
        return [printable(f"{h['hit_id']} WITHDRAWN {flight} {p['ref']} (manifest {h['manifest_id']})")]
    marker = f" {REVIEW_MARKER}" if h["for_review"] else ""
    head = f"{h['hit_id']} {flight} {p['ref']} {p['surname']}, {p['given_names']} score={h['score']:.2f}{marker}"
    reasons = [
        f"    {r['source']:9} {r['id']:<18} {r['score']:.2f} {r['band']:<6}  {r['explanation']}" for r in h["reasons"]
    ]
    return [printable(line) for line in [head, *reasons]]  # carriers' and members' text: no terminal controls


@hits_app.command("follow")
def hits_follow(
    member: Annotated[str, typer.Option("--member", help="Member, ISO 3166-1 alpha-3")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    idle_exit: Annotated[float | None, typer.Option(help="Exit after this many seconds without a hit")] = None,
    cursor: Annotated[int | None, typer.Option(help="Start at this cursor instead of the last acknowledged")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit and line")] = False,
    reader: Annotated[
        str,
        typer.Option(
            help="Which of the member's tools this is: each reader has its own acknowledged cursor, so it never "
            'takes hits from another ("": the member\'s contact point)'
        ),
    ] = "cli",
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="The record of the hits shown (default: follow-MEMBER-READER.sqlite in APIHUB_FOLLOW_STATE_DIR, "
            "else ~/.local/state/apihub)",
            dir_okay=False,
        ),
    ] = None,
    reconnect: Annotated[
        bool, typer.Option("--reconnect/--no-reconnect", help="Reconnect when the hub restarts or the link drops")
    ] = True,
) -> None:
    """Stream a member's hits: show each version of a hit once, record it, then acknowledge it.

    A hit marked [REVIEW] holds only weaker watchlist matches (in the member's review band) and/or the risk
    model's ranking: for a human to check before acting. Each watchlist reason shows its band, alert or review
    (APIHUB_SCREENING_BANDS; see the README). A version delivered again (after a crash of the hub or of this
    command) is skipped; the counts (shown, repeats skipped, lost, reconnections) are printed to stderr on exit.
    """
    from services.follow import Backoff
    from services.follow_state import FollowStateError, ShownLog, default_state_dir, state_file_name

    settings, member, token = _as_member(member, token)
    chan = _channel(settings, server or settings.delivery_listen)  # bad TLS settings fail before any file is made
    try:
        path = state or (settings.follow_state_dir or default_state_dir()) / state_file_name(member, reader)
        shown = ShownLog(
            path, keep_days=settings.follow_state_days, max_entries=settings.follow_state_max_entries, warn=_stderr_line
        )
    except (ValueError, FollowStateError) as exc:
        _fail(str(exc))

    def show(delivery: delivery_pb2.Delivery) -> None:
        h = hit_to_json(delivery.hit, delivery.cursor)
        for line in [json.dumps(h)] if as_json else follow_lines(h):
            typer.echo(line)
        sys.stdout.flush()

    backoff = Backoff(settings.follow_retry_seconds, settings.follow_retry_max_seconds) if reconnect else None
    follower = client.Follower(chan, token, member, reader=reader, shown=shown, backoff=backoff, notify=_stderr_line)
    failed = None
    # SIGTERM stops it as Ctrl-C does: the counts are still printed (in the main thread only, as Python allows).
    in_main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main else None
    try:
        follower.follow(show, idle_exit=idle_exit, cursor=cursor)
    except grpc.RpcError as exc:
        failed = exc
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, before)
        shown.close()
        _say_follow_stats(follower.stats.as_dict(), member, reader, as_json)
    if failed is not None:
        _rpc_error(failed)


def _stderr_line(line: str) -> None:
    typer.echo(printable(f"apihub: {line}"), err=True)


def _say_follow_stats(stats: dict[str, int], member: str, reader: str, as_json: bool) -> None:
    """The last line of `hits follow`, on stderr: what it showed, skipped as shown before, found lost."""
    if as_json:
        typer.echo(json.dumps({"stats": {"member": member, "reader": reader, **stats}}), err=True)
        return
    _stderr_line(
        f"{member} ({f'reader {reader}' if reader else 'contact point'}): {stats['shown']} shown, "
        f"{stats['repeats_skipped']} repeats skipped (shown before), {stats['lost']} lost, "
        f"{stats['reconnects']} reconnections"
    )


@app.command()
def screen(
    manifests: Annotated[
        list[Path], typer.Argument(help="Manifest files: PAXLST or JSON", exists=True, dir_okay=False)
    ],
    watchlist: Annotated[
        list[Path], typer.Option("--watchlist", help="Watchlist CSV (owner from its owner column); repeatable")
    ] = (),
    rules: Annotated[list[Path], typer.Option("--rules", help="A member's rule file (YAML); repeatable")] = (),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON hit per line and recipient")] = False,
    encoding: EncodingOpt = None,
) -> None:
    """Screen manifest files offline with the profiler's own scoring code: no Kafka, no services.

    Hits are printed once per recipient member (jurisdiction plus the sharing policy), as that member would
    receive them: its own screening bands (APIHUB_SCREENING_BANDS) and model thresholds applied, each watchlist
    reason marked with its band (alert or review), in the format of `apihub hits follow --json`. Travellers that
    raise no hit, or none a member would receive, print nothing for it.
    """
    from datetime import UTC, datetime

    from services.directory import load_directory
    from services.profiler.rules import Breaker
    from services.profiler.rules_cli import read_manifest_files
    from services.profiler.scoring import score_batch
    from services.router.recipients import member_tailor, recipients
    from services.rules.language import RuleLimits, RulesetError, load_ruleset
    from services.rules.store import RuleStore
    from services.sharing import load_policy

    settings = _settings()
    directory = _from_settings_file("APIHUB_DIRECTORY_FILE", load_directory, settings.directory_file)
    store = _offline_watchlists(settings, watchlist, encoding)
    rule_store = RuleStore()
    for path in rules:
        try:
            rule_store.apply(load_ruleset(path, None, RuleLimits.from_settings(settings)))
        except RulesetError as exc:
            _fail(str(exc), 1)
    found, problems = read_manifest_files(list(manifests))
    for problem in problems:
        typer.echo(printable(f"apihub: {problem}"), err=True)
    policy = _from_settings_file("APIHUB_SHARING_FILE", load_policy, settings.sharing_file, directory)
    breaker = Breaker(settings.breaker_max_share, settings.breaker_min_travellers)
    hits = score_batch(
        [m for m, _ in found],
        store,
        directory,
        datetime.now(UTC),
        rule_store.rules,
        breaker,
        watchlist_threshold=settings.lowest_screening_review,
    )
    tailor = member_tailor(settings)
    for hit in hits:
        for member in sorted(recipients(hit, directory, policy)):
            version = tailor(hit, member)
            if version is not None:  # None: nothing in it reaches this member's own bands or thresholds
                _echo_screened(version, member, as_json)
    if problems:
        raise typer.Exit(1)


def _offline_watchlists(settings: HubSettings, paths: Sequence[Path], encoding: str | None = None) -> WatchlistStore:
    """A WatchlistStore with the entries of these watchlist CSVs, each owner's as a regional list."""
    from services.profiler.watchlist import WatchlistStore, traveller_names

    try:
        store = WatchlistStore(traveller_names(settings))
    except ConfigError as exc:
        _fail(f"bad settings: {exc}")
    for path in paths:
        by_owner: dict[str, list] = {}
        try:
            for entry in client.read_watchlist_file(path, None, settings.watchlist_file_max_bytes, encoding):
                by_owner.setdefault(entry.owner, []).append(entry)
        except client.WatchlistFileError as exc:
            _fail(f"{path}: {exc}")
        for owner, entries in by_owner.items():
            store.apply(
                delivery_pb2.Watchlist(owner=owner, scope=delivery_pb2.WATCHLIST_SCOPE_REGIONAL, entries=entries)
            )
    return store


def _echo_screened(version: hit_pb2.Hit, member: str, as_json: bool) -> None:
    """A member's copy of a hit: one line of text, or its JSON form as `apihub hits follow --json` prints it."""
    copy = hit_pb2.Hit()
    copy.CopyFrom(version)
    copy.recipient = member
    h = hit_to_json(copy)
    if as_json:
        typer.echo(json.dumps(h))
        return
    why = ", ".join(
        f"{r['source']} {r['id']} {r['score']:.2f}" + (f" {r['band']}" if r["band"] else "") for r in h["reasons"]
    )
    f = h["flight"]
    marker = f" {REVIEW_MARKER}" if h["for_review"] else ""
    typer.echo(
        printable(
            f"{member} {h['hit_id']} {f['carrier']}{f['number']} {h['passenger']['ref']} "
            f"score={h['score']:.2f}{marker} ({why})"
        )
    )


@rules_app.command("load")
def rules_load(
    file: Annotated[Path, typer.Argument(help="The member's rule file (YAML)", exists=True, dir_okay=False)],
    member: Annotated[str, typer.Option("--member", help="Owner member, ISO 3166-1 alpha-3")],
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Replace a member's targeting rules in the running hub: every profiler applies them, no restart."""
    settings, member, token = _as_member(member, token)
    try:
        text = read_text(file, "rule file", settings.rules_max_bytes, setting="APIHUB_RULES_MAX_BYTES")
    except InputFileError as exc:
        _fail(str(exc), 1)
    try:
        reply = client.load_rules(_channel(settings, server or settings.delivery_listen), token, member, text)
    except grpc.RpcError as exc:
        _rpc_error(exc)
    if reply.errors:
        for v in reply.errors:
            typer.echo(printable(f"  {file}: {v.description}"), err=True)
        _fail(f"rules not loaded: {len(reply.errors)} problems", 1)
    typer.echo(f"Loaded {reply.rules} enabled rules for {member} (digest {reply.digest}).")


class Outcome(StrEnum):
    true_match = "true_match"
    false_positive = "false_positive"
    denied_boarding = "denied_boarding"
    refused_entry = "refused_entry"
    secondary_positive = "secondary_positive"
    secondary_negative = "secondary_negative"


@hits_app.command("dispose")
def hits_dispose(
    hit_id: Annotated[str, typer.Argument(help="The hit's id (hit_id in `apihub hits follow --json`)")],
    member: Annotated[str, typer.Option("--member", help="Member, ISO 3166-1 alpha-3")],
    outcome: Annotated[Outcome, typer.Option(help="What the profiling unit found")],
    note: Annotated[str, typer.Option(help="Remark for the member's own records (never logged)")] = "",
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Record the member's outcome for a hit it received (labels for precision statistics and training)."""
    settings, member, token = _as_member(member, token)
    value = delivery_pb2.Outcome.Value(f"OUTCOME_{outcome.value.upper()}")
    try:
        reply = client.dispose(
            _channel(settings, server or settings.delivery_listen), token, member, hit_id, value, note
        )
    except grpc.RpcError as exc:
        _rpc_error(exc)
    typer.echo(printable(f"Recorded {outcome.value} for hit {reply.disposition.hit_id} ({member})."))


@hits_app.command("override")
def hits_override(
    hit_id: Annotated[str, typer.Argument(help="The hit's id (hit_id in `apihub hits follow --json`)")],
    member: Annotated[str, typer.Option("--member", help="Member, ISO 3166-1 alpha-3")],
    reason: Annotated[str, typer.Option(help="Why the traveller may board, one line (audited)")] = "",
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the member's override of this hit")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Let the traveller of an interactive hit board despite the member's board policy (the next check answers OK
    to board as far as this member is concerned), or withdraw that (--revoke)."""
    settings, member, token = _as_member(member, token)
    if not revoke and not reason.strip():
        _fail("--reason is required: what the officer checked, in a few words")
    try:
        given = client.override(
            _channel(settings, server or settings.delivery_listen), token, member, hit_id, reason, revoke
        )
    except grpc.RpcError as exc:
        _rpc_error(exc)
    done = "Withdrew the override of" if given.revoked else "Overrode"
    typer.echo(printable(f"{done} hit {given.hit_id} for {member}."))


@hits_app.command("overrides")
def hits_overrides(
    member: Annotated[str, typer.Option("--member", help="Member, ISO 3166-1 alpha-3")],
    hit_id: Annotated[str, typer.Option("--hit", help="Only this hit's override")] = "",
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """List the member's board overrides, newest first (withdrawn ones marked), one per line."""
    settings, member, token = _as_member(member, token)
    try:
        found = client.overrides(_channel(settings, server or settings.delivery_listen), token, member, hit_id)
    except grpc.RpcError as exc:
        _rpc_error(exc)
    if not found:
        typer.echo(f"{member} has no board override.", err=True)
    for given in found:
        at = given.at.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
        state = "withdrawn" if given.revoked else "stands"
        typer.echo(printable(f"{given.hit_id} {state} {at} {given.user or '-'}: {given.reason}"))


audit_app = typer.Typer(invoke_without_command=True)
app.add_typer(audit_app, name="audit")


@audit_app.callback()
def audit(
    ctx: typer.Context,
    member: Annotated[str | None, typer.Option("--member", help="Only this member's events")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event and line")] = False,
) -> None:
    """Read the audit trail back from Kafka: every delivery, acknowledgement and disposition (operators).
    `apihub audit verify` checks that the trail is intact."""
    if ctx.invoked_subcommand is not None:
        return
    from google.protobuf.message import DecodeError

    from services.audit import is_seal
    from services.bus import Topics, read_to_end

    settings = _settings()
    wanted = member.upper() if member else None
    # The trail is read to its current end, then the command exits.
    for record in read_to_end(settings, Topics(settings.topic_prefix).audit, "apihub-audit-reader"):
        if is_seal(record):  # the router's seals (apihub audit verify), not events
            continue
        try:
            event = delivery_pb2.AuditEvent.FromString(record.value or b"")
        except DecodeError:
            typer.echo(f"offset {record.offset}: not an audit event (see `apihub audit verify`)", err=True)
            continue
        if wanted and event.member != wanted:
            continue
        at = event.at.ToJsonString()
        if as_json:
            fields = ("event", "member", "hit_id", "cursor", "detail", "user")
            typer.echo(json.dumps({"at": at, **{name: getattr(event, name) for name in fields}}))
        else:
            where = event.hit_id or f"cursor {event.cursor}"
            by = f" by {event.user}" if event.user else ""
            typer.echo(printable(f"{at} {event.member} {event.event:12} {where} {event.detail}{by}"))


@audit_app.command("verify")
def audit_verify(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="OFFSET:SHA256",
            help="A checkpoint an earlier verify printed: fail if records up to it were deleted or differ",
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            help="Fail when events older than this many seconds are not sealed "
            "(default: 3 x APIHUB_AUDIT_SEAL_SECONDS, at least 300)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object")] = False,
) -> None:
    """Check the audit trail: recompute its hash chain, check every seal the routers wrote, report the first
    break. Exit status 1 on a break or on events left unsealed past the grace period."""
    import time

    from kafka.errors import KafkaError

    from services.audit import parse_checkpoint, verify_trail

    settings = _settings()
    try:
        checkpoint = parse_checkpoint(since) if since else None
    except ValueError as exc:
        _fail(f"--since: {exc}")
    try:
        report = verify_trail(settings, since=checkpoint)
    except HubError as exc:
        _fail(str(exc), code=1)
    except KafkaError as exc:
        _fail(f"the audit topic could not be read ({type(exc).__name__}): is the broker up?", code=1)
    grace_s = grace if grace is not None else max(300.0, 3 * settings.audit_seal_seconds)
    stale = report.oldest_unsealed_ms is not None and report.oldest_unsealed_ms < (time.time() - grace_s) * 1000
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "stale_unsealed": stale}))
    else:
        for line in _trail_lines(report, stale, grace_s):
            typer.echo(line)
    if not report.ok or stale:
        raise typer.Exit(1)


def _trail_lines(report, stale: bool, grace_s: float) -> list[str]:
    first = report.first_checked
    lines = [f"audit trail {report.topic}: offsets {report.log_start}..{report.end - 1}"]
    if report.log_start > 0:
        lines.append(
            f"  offsets 0..{report.log_start - 1} are no longer on the topic (retention, `apihub purge`, or someone's "
            "delete_records: the trail alone cannot tell; keep checkpoints)"
        )
    if first is None:
        lines.append("  no seal covers the log start: no record could be checked")
    elif first > report.log_start:
        lines.append(f"  checked from offset {first}: the first seal on the topic attests the records before it")
    lines.append(f"  events: {report.events}, chain recomputed for {report.checked}")
    lines.append(
        f"  seals: {report.seals} ({report.seals_valid} checked, {report.seals_retired} under keys no longer in "
        f"the ring, {report.seals_unchecked} covering records no longer held)"
    )
    if report.unsealed:
        lines.append(
            f"  unsealed: {report.unsealed} events after offset {report.sealed_through}, not yet protected"
            + (f" (older than {grace_s:.0f} s: is a router running and sealing?)" if stale else "")
        )
    if report.checkpoint:
        lines.append(f"  checkpoint: {report.checkpoint}  (keep it outside the hub; --since checks it later)")
    if report.breaks:
        lines.append(f"  first break: offset {report.breaks[0].offset}: {report.breaks[0].reason}")
        lines.extend(f"  break: offset {b.offset}: {b.reason}" for b in report.breaks[1:])
    lines.append("TAMPERED" if report.breaks else ("NOT SEALED" if stale else "OK"))
    return lines


@app.command()
def dispositions(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per reason and line")] = False,
) -> None:
    """Precision of each rule, watchlist entry and model version, from members' dispositions (operators)."""
    from services.bus import Topics, read_to_end
    from services.dispositions import precision_by_reason

    settings = _settings()
    records = read_to_end(settings, Topics(settings.topic_prefix).dispositions, "apihub-dispositions-reader")
    found = [delivery_pb2.Disposition.FromString(r.value) for r in records]
    for row in precision_by_reason(found):
        precision = row.precision
        if as_json:
            typer.echo(
                json.dumps(
                    {"reason": row.reason, "confirmed": row.confirmed, "refuted": row.refuted, "precision": precision}
                )
            )
        else:
            shown = f"{precision:.2f}" if precision is not None else "-"
            typer.echo(
                printable(f"{row.reason:50} confirmed {row.confirmed:5} refuted {row.refuted:5} precision {shown}")
            )


@carriers_app.command("quality")
def carriers_quality(
    since: Annotated[
        str | None,
        typer.Option(help="Only manifests received since: an age (24h, 7d) or a UTC date or time (2026-03-10)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per carrier and line")] = False,
) -> None:
    """Data quality per carrier, from the manifests stored in Kafka: manifests, travellers, late submissions
    (received after departure) and intake warnings by kind (operators)."""
    from kafka.errors import KafkaError

    from services.api_ingest.quality import parse_since, read_quality

    settings = _settings()
    try:
        rows = read_quality(settings, parse_since(since) if since else None)
    except ValueError as exc:
        _fail(str(exc))
    except KafkaError as exc:
        _fail(f"cannot read the manifests from Kafka at {settings.bootstrap}: {type(exc).__name__}", 1)
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row.as_json()))
        else:
            for line in row.lines():
                typer.echo(printable(line))
    if not rows and not as_json:
        typer.echo(printable("no manifests stored" + (f" since {since}" if since else "")))


# -- development -----------------------------------------------------------------------------------------
@dev_app.command("token")
def dev_token(
    carrier: Annotated[str | None, typer.Option("--carrier", help="IATA carrier code, e.g. FJ")] = None,
    member: Annotated[str | None, typer.Option("--member", help="Member ISO alpha-3 code, e.g. FJI")] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime, e.g. 30d, 12h, 90m (default: APIHUB_TOKEN_LIFETIME_DAYS)"),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the new token with its id (jti), key id, expiry and SHA-256 (token_sha256)"),
    ] = False,
    show: Annotated[
        str | None,
        typer.Option(
            "--show", metavar="TOKEN", help="Instead: what TOKEN says, its SHA-256, and whether the hub verifies it"
        ),
    ] = None,
    digest: Annotated[bool, typer.Option("--digest", help="With --show: print only the token's SHA-256")] = False,
) -> None:
    """Issue a credential for a carrier or member, signed by the configured key ring (the demo's by default)."""
    from services.auth import issue_token, parse_lifetime, token_claims, verify_token

    settings = _settings()
    if show is not None:
        try:
            claims = token_claims(show)
        except HubError as exc:
            _fail(str(exc))
        if digest:
            typer.echo(claims["sha256"])
            return
        try:
            verify_token(settings, show)
            claims["verifies"], claims["problem"] = True, ""
        except HubError as exc:
            claims["verifies"], claims["problem"] = False, str(exc)
        typer.echo(json.dumps(claims))
        return
    if digest:
        _fail("--digest goes with --show TOKEN: each new token has its own id and expiry; --json prints its SHA-256")
    if bool(carrier) == bool(member):
        _fail("give exactly one of --carrier XX or --member XXX")
    try:
        lifetime = parse_lifetime(expires) if expires else None
    except ValueError as exc:
        _fail(f"--expires: {exc}")
    if carrier:
        if not (2 <= len(carrier) <= 3 and carrier.isalnum()):
            _fail("--carrier must be a 2-character IATA (or 3-character ICAO) code")
        token = issue_token(settings, "carrier", carrier, lifetime=lifetime)
    else:
        from services.directory import load_directory

        directory = _from_settings_file("APIHUB_DIRECTORY_FILE", load_directory, settings.directory_file)
        if member.upper() not in directory:
            _fail(f"--member {member}: not in the member directory ({', '.join(directory.codes)})")
        token = issue_token(settings, "member", member, lifetime=lifetime)
    if as_json:
        claims = token_claims(token)
        typer.echo(json.dumps({"token": token, **claims}))
    else:
        typer.echo(token)


@dev_app.command("certs")
def dev_certs(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the certificates and keys to")],
    member: Annotated[
        list[str], typer.Option("--member", help="Write a client certificate for this member (repeatable)")
    ] = (),
    carrier: Annotated[
        list[str], typer.Option("--carrier", help="Write a client certificate for this carrier (repeatable)")
    ] = (),
    host: Annotated[
        list[str], typer.Option("--host", help="Another name or IP for the server certificate (repeatable)")
    ] = (),
    days: Annotated[int, typer.Option(help="Validity in days")] = 30,
    force: Annotated[bool, typer.Option("--force", help="Replace certificates and keys already in --out")] = False,
) -> None:
    """Write a throwaway CA, a server certificate (localhost, 127.0.0.1, ::1) and client certificates, for trying
    TLS and mutual TLS locally. Private keys go only into --out, readable by you alone (0600). Never for
    production: the CA's own key is not kept, so run again (and restart the hub) for more certificates.
    """
    from services.tls import write_dev_certs

    try:
        written = write_dev_certs(out, member, carrier, host, days=days, force=force)
    except ConfigError as exc:
        _fail(str(exc))
    except OSError as exc:  # --out is a file, or a path that cannot be a directory
        _fail(f"{out}: cannot write the certificates there: {exc.strerror or exc}")
    for f in written:
        typer.echo(f"{f.path}  {f.what}" + (f"\n    sha256 {f.sha256}" if f.sha256 else ""))
    d = out.resolve()
    example = f"member-{member[0].upper()}" if member else (f"carrier-{carrier[0].upper()}" if carrier else None)
    typer.echo("\nServers (mutual TLS; leave out the last line for TLS only):")
    typer.echo(f"  export APIHUB_TLS_CERT_FILE={d}/server.pem APIHUB_TLS_KEY_FILE={d}/server-key.pem")
    typer.echo(f"  export APIHUB_TLS_CLIENT_CA_FILE={d}/ca.pem")
    typer.echo("Clients:")
    typer.echo(f"  export APIHUB_TLS_CA_FILE={d}/ca.pem")
    if example:
        typer.echo(
            f"  export APIHUB_TLS_CLIENT_CERT_FILE={d}/{example}.pem APIHUB_TLS_CLIENT_KEY_FILE={d}/{example}-key.pem"
        )
    if member:
        typer.echo("Pin a member to its certificate: cert_sha256: [<its sha256 above>] in its directory entry.")


@dev_app.command("protos")
def dev_protos() -> None:
    """Regenerate services/wire from proto/ (needs the dev extra: grpcio-tools)."""
    from services.protogen import main

    raise typer.Exit(main())


@dev_app.command("demo-files")
def dev_demo_files(directory: Annotated[Path, typer.Argument(help="Where to write the files")]) -> None:
    """Write demo manifests (JSON) and a demo watchlist (CSV) to try `submit` and `watchlist load` by hand (from a
    source checkout: the demo data is dev code, not part of an installed hub)."""
    from services.checkout import DevCodeMissingError, import_dev

    try:
        demo = import_dev("synthetic.demo", "apihub dev demo-files")
    except DevCodeMissingError as exc:
        _fail(str(exc))
    try:
        written = demo.write_demo_files(directory)
    except OSError as exc:
        _fail(f"{directory}: cannot write the demo files there: {exc.strerror or exc}")
    for path in written:
        typer.echo(path)


# `apihub bench` hands its arguments (`--help` included) to the benchmark suite's own command, whose options and help
# live with the suite. The suite is dev code outside the runtime package (the Docker image has none of it): it is
# imported only here, when the command runs, so `apihub` starts from an install of services/ alone.
@app.command(
    "bench",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Benchmarks and the cost model, from a source checkout (`apihub bench --help` there for the options)."""
    from services.checkout import DevCodeMissingError, import_dev

    try:
        suite = import_dev("benchmarks.cli", "apihub bench")
    except DevCodeMissingError as exc:
        _fail(str(exc))
    suite.app(args=ctx.args, prog_name="apihub bench")


def run() -> None:
    """The `apihub` command: a hub error no command caught (the broker out of reach while reading the audit
    trail, say) ends with its message and exit status 3, never a traceback."""
    try:
        app()
    except HubError as exc:
        typer.echo(printable(f"apihub: {exc}"), err=True)
        raise SystemExit(3) from None


if __name__ == "__main__":
    run()

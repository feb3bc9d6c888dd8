"""`apihub`: the one command for running the hub, carriers' submissions, members' hits and development."""

from __future__ import annotations

import json
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
from services.codec import hit_to_json, manifest_from_json
from services.config import HubSettings
from services.errors import ConfigError, HubError
from services.profiler.model_cli import model_app
from services.profiler.rules_cli import rules_app
from services.terminal import printable
from services.userfiles import InputFileError, read_bytes, read_text
from services.wire import delivery_pb2, hit_pb2, intake_pb2, manifest_pb2

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
app.add_typer(model_app, name="model")


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
    "connect (submit, watchlist load, hits follow, hits dispose, rules load) use TLS when APIHUB_TLS_CA_FILE, "
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
    """Run the whole hub: Kafka (local unless APIHUB_KAFKA_BOOTSTRAP is set), ingest, profiler, router."""
    from services.checkout import DevCodeMissingError, import_dev
    from services.launcher import Hub, warn_if_demo_secret
    from services.serving import wait_for_signal

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
    hub = Hub(settings, say)
    try:
        hub.start()
    except HubError as exc:
        _fail(str(exc))
    stop = threading.Event()
    if exit_after is not None:
        threading.Timer(exit_after, lambda: __import__("os").kill(__import__("os").getpid(), 15)).start()
    worker = None
    if run_demo is not None:

        def demo_loop() -> None:
            try:
                run_demo(hub, stop, interval, say)
            except (HubError, grpc.RpcError) as exc:
                say(f"demo stopped: {exc}")

        worker = threading.Thread(target=demo_loop, daemon=True, name="demo")
        worker.start()
        say("Demo traffic running; hits appear below as members' contact points receive them. Ctrl-C stops.")
    else:
        say("Ctrl-C stops the hub.")

    def shutdown() -> None:
        stop.set()
        if worker:
            worker.join(10)
        say("Stopping services...")
        hub.stop()
        say("Hub stopped.")

    wait_for_signal(shutdown)


class Service(StrEnum):
    ingest = "ingest"
    profiler = "profiler"
    router = "router"


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
    else:
        from services.router.server import run_router

        run_router(settings)


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


# -- carriers --------------------------------------------------------------------------------------------
def _read_manifests(data: bytes) -> list[manifest_pb2.Manifest]:
    """A JSON file holds one manifest (an object) or several (an array), in the proto's JSON form."""
    parsed = json.loads(data)
    items = parsed if isinstance(parsed, list) else [parsed]
    return [manifest_from_json(json.dumps(item)) for item in items]


def _receipt_json(receipt: intake_pb2.Receipt, source: str) -> dict:
    out = json_format.MessageToDict(
        receipt, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    out["status"] = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_").lower()
    out["file"] = source
    return out


def _unreadable(description: str) -> intake_pb2.Receipt:
    bad = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED)
    bad.errors.add(field="", code="unreadable", description=description)
    return bad


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
    as_json: Annotated[bool, typer.Option("--json", help="One JSON receipt per message")] = False,
) -> None:
    """Send manifests; print a receipt for each message. Exit code 0 only if none was rejected."""
    from services.paxlst.reader import looks_like_paxlst, split_interchanges

    settings = _settings()
    token = _need_token(token, "--carrier XX")
    chan = _channel(settings, server or settings.ingest_listen)
    receipts: list[tuple[intake_pb2.Receipt, str]] = []
    manifests: list[tuple[manifest_pb2.Manifest, str]] = []
    try:
        for path in files:
            try:
                data = read_bytes(path, "manifest file")
            except InputFileError as exc:
                receipts.append((_unreadable(exc.reason), str(path)))
                continue
            if looks_like_paxlst(data):
                # A file may hold several interchanges one after the other: each is submitted on its own.
                interchanges = split_interchanges(data)
                for n, interchange in enumerate(interchanges):
                    source = f"{path}" if len(interchanges) == 1 else f"{path}[{n + 1}]"
                    answer = client.submit_paxlst(chan, token, interchange)
                    if answer.errors:  # the interchange itself was refused: one receipt stands for it
                        whole = intake_pb2.Receipt(status=intake_pb2.RECEIPT_STATUS_REJECTED)
                        whole.errors.extend(answer.errors)
                        whole.warnings.extend(answer.warnings)
                        receipts.append((whole, source))
                    elif answer.warnings and answer.receipts:
                        # The interchange's own warnings (trailing data after UNZ, ...) shown with its first message.
                        first = answer.receipts[0]
                        own = list(first.warnings)
                        del first.warnings[:]
                        first.warnings.extend([*answer.warnings, *own])
                    receipts += [(r, f"{source}#{i + 1}") for i, r in enumerate(answer.receipts)]
                continue
            try:
                manifests += [(m, str(path)) for m in _read_manifests(data)]
            except (ValueError, json_format.ParseError) as exc:
                receipts.append((_unreadable(f"neither PAXLST nor a JSON manifest: {exc}"), str(path)))
        if manifests:
            answers = client.submit(chan, token, [m for m, _ in manifests])
            receipts += [(r, src) for r, (_, src) in zip(answers, manifests, strict=True)]
    except grpc.RpcError as exc:
        _rpc_error(exc)
    for receipt, source in receipts:
        if as_json:
            typer.echo(json.dumps(_receipt_json(receipt, source)))
            continue
        status = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_")
        counts = f"({receipt.passengers} passengers, {receipt.crew} crew)"
        typer.echo(printable(f"{source}: {status} {receipt.manifest_id} {counts}"))
        for kind, violations in (("error  ", receipt.errors), ("warning", receipt.warnings)):
            for v in violations:
                where = " ".join(x for x in (v.segment, v.field) if x)
                typer.echo(printable(f"  {kind} {where}: {v.description} [{v.code}]"))
    ok = (intake_pb2.RECEIPT_STATUS_ACCEPTED, intake_pb2.RECEIPT_STATUS_DUPLICATE)
    if any(r.status not in ok for r, _ in receipts):
        raise typer.Exit(1)


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
) -> None:
    """Stream a member's hits, acknowledging each once printed.

    A hit marked [REVIEW] holds only weaker watchlist matches (in the member's review band) and/or the risk
    model's ranking: for a human to check before acting. Each watchlist reason shows its band, alert or review
    (APIHUB_SCREENING_BANDS; see the README).
    """
    settings, member, token = _as_member(member, token)

    def show(delivery: delivery_pb2.Delivery) -> None:
        h = hit_to_json(delivery.hit, delivery.cursor)
        for line in [json.dumps(h)] if as_json else follow_lines(h):
            typer.echo(line)
        sys.stdout.flush()

    follower = client.Follower(_channel(settings, server or settings.delivery_listen), token, member)
    try:
        follower.follow(show, idle_exit=idle_exit, cursor=cursor)
    except grpc.RpcError as exc:
        _rpc_error(exc)
    except KeyboardInterrupt:
        pass


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
            fields = ("event", "member", "hit_id", "cursor", "detail")
            typer.echo(json.dumps({"at": at, **{name: getattr(event, name) for name in fields}}))
        else:
            where = event.hit_id or f"cursor {event.cursor}"
            typer.echo(printable(f"{at} {event.member} {event.event:12} {where} {event.detail}"))


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

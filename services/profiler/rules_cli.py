"""`apihub rules`: check a member's rule file, backtest it on manifest files, print the starter templates.

Runs offline: no broker and no hub needed. The backtest evaluates rules with the platform's one implementation
(services.rules.evaluate, which the profiler runs too) and its --json form scores with the profiler's own code
(scoring.score_batch), so what it shows is what the live profiler would raise from these rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from google.protobuf import json_format

from services import codec
from services.config import HubSettings
from services.directory import Directory, load_directory
from services.errors import ConfigError
from services.profiler.scoring import score_batch
from services.profiler.watchlist import WatchlistStore
from services.rules.evaluate import Breaker, match_rules, removes_travellers, rule_frame
from services.rules.language import RuleLimits, RuleSet, RulesetError, describe_fields, load_ruleset, starter_text
from services.rules.rule import HUB_RULES
from services.terminal import printable
from services.userfiles import InputFileError, read_bytes
from services.wire import manifest_pb2

rules_app = typer.Typer(help="Members' targeting rules: check, backtest, templates.", no_args_is_help=True)

MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="Member loading the file (ISO alpha-3): fills the template placeholder owner"),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"apihub: {message}", err=True)
    raise typer.Exit(code)


def _limits() -> RuleLimits:
    """The rule file limits the hub is configured with (APIHUB_RULES_*), so a file checked here loads there."""
    from pydantic import ValidationError

    try:
        return RuleLimits.from_settings(HubSettings())
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        _fail(f"bad settings: {problems}")


def _directory(path: Path | None) -> Directory:
    """The member directory (--directory, else the shipped one); a clear message (exit 2) if it cannot be used."""
    import yaml

    try:
        return load_directory(path)
    except (ConfigError, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        _fail(f"--directory {path}: cannot use it: {reason}")


def _load(path: Path, member: str | None) -> RuleSet:
    try:
        return load_ruleset(path, member, _limits())
    except RulesetError as exc:
        for problem in exc.problems:
            typer.echo(
                f"{path}:{problem.line}: {f'rule {problem.rule_id}: ' if problem.rule_id else ''}{problem.message}",
                err=True,
            )
        raise typer.Exit(1) from None


@rules_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Rule files (YAML)", exists=True, dir_okay=False)],
    member: MemberOpt = None,
) -> None:
    """Validate rule files; print each problem as FILE:LINE: rule ID: message. Exit code 1 on any problem."""
    failed = False
    for path in files:
        try:
            ruleset = _load(path, member)
        except typer.Exit:
            failed = True
            continue
        disabled = f", {len(ruleset.disabled)} disabled" if ruleset.disabled else ""
        typer.echo(f"{path}: ok, owner {ruleset.owner}, {len(ruleset.rules)} rules{disabled} (digest {ruleset.digest})")
    if failed:
        raise typer.Exit(1)


@rules_app.command("fields")
def fields() -> None:
    """The fields and operators a rule's `when:` condition can use."""
    typer.echo(describe_fields())


@rules_app.command("template")
def template(member: MemberOpt = None) -> None:
    """Print the starter templates (published weak indicators) to copy and adapt."""
    typer.echo(starter_text(member), nl=False)


def read_manifest_files(paths: list[Path]) -> tuple[list[tuple[manifest_pb2.Manifest, str]], list[str]]:
    """(manifest, source label) of every readable message in the files, and one line per unreadable one.

    PAXLST interchanges (several per file allowed) or the JSON form of apihub.v1.Manifest (an object or an
    array), told apart by content as `apihub submit` does.
    """
    from services.paxlst.reader import looks_like_paxlst, parse_paxlst, split_interchanges

    manifests: list[tuple[manifest_pb2.Manifest, str]] = []
    problems: list[str] = []
    for path in paths:
        try:
            data = read_bytes(path, "manifest file")
        except InputFileError as exc:
            problems.append(str(exc))
            continue
        if looks_like_paxlst(data):
            interchanges = split_interchanges(data)
            for n, interchange in enumerate(interchanges):
                source = str(path) if len(interchanges) == 1 else f"{path}[{n + 1}]"
                parsed = parse_paxlst(interchange)
                if parsed.errors:
                    problems.append(f"{source}: interchange rejected: {parsed.errors[0].description}")
                    continue
                for i, message in enumerate(parsed.messages):
                    if message.manifest is None:
                        problems.append(f"{source}#{i + 1}: message rejected")
                    else:
                        manifests.append((message.manifest, f"{source}#{i + 1}"))
            continue
        try:
            parsed_json = json.loads(data)
            items = parsed_json if isinstance(parsed_json, list) else [parsed_json]
            manifests += [(codec.manifest_from_json(json.dumps(item)), str(path)) for item in items]
        except (ValueError, json_format.ParseError) as exc:
            problems.append(f"{path}: neither PAXLST nor a JSON manifest: {exc}")
    return manifests, problems


def _flight(manifest: manifest_pb2.Manifest) -> str:
    departure = codec.first_departure(manifest)
    route = "-".join(codec.route_of(manifest))
    return f"{manifest.carrier}{manifest.flight_number} {departure.date().isoformat() if departure else '?'} {route}"


@rules_app.command("test")
def test(
    rule_file: Annotated[Path, typer.Argument(help="Rule file (YAML)", exists=True, dir_okay=False)],
    manifest_files: Annotated[
        list[Path],
        typer.Argument(help="Manifest files: PAXLST interchanges or JSON manifests", exists=True, dir_okay=False),
    ],
    member: MemberOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON hit per line, as `apihub hits follow --json` prints")
    ] = False,
    hub_rules: Annotated[bool, typer.Option(help="Also apply the hub-wide rules (HUB-DOC-EXPIRED)")] = False,
    max_share: Annotated[float, typer.Option(help="Breaker: share of one flight a rule may flag")] = 0.30,
    min_travellers: Annotated[int, typer.Option(help="Breaker: smallest flight it watches")] = 20,
    directory_file: Annotated[
        Path | None, typer.Option("--directory", help="Member directory YAML (default: the shipped one)")
    ] = None,
) -> None:
    """Backtest: which travellers each rule would flag in these manifests, in the owner's jurisdiction.

    The table names travellers only by passenger reference (or position), never by name or document.
    Breaker trips go to standard error. Exit code 1 if the rule file or a manifest could not be read.
    """
    ruleset = _load(rule_file, member)
    rules = (*HUB_RULES, *ruleset.rules) if hub_rules else ruleset.rules
    try:
        breaker = Breaker(max_share, min_travellers)
    except ValueError as exc:
        typer.echo(f"apihub: {exc}", err=True)
        raise typer.Exit(2) from None
    directory = _directory(directory_file)
    loaded, problems = read_manifest_files(manifest_files)
    for line in problems:
        typer.echo(line, err=True)
    # Versions that take travellers off a flight are not screened, as in the profiler.
    screened = [(m, src) for m, src in loaded if not removes_travellers(m)]
    batch = [m for m, _ in screened]
    matched, trips = match_rules(rule_frame(batch, rules, directory), rules, breaker) if batch else (None, [])
    for trip in trips:
        typer.echo(
            f"breaker: rule {trip.rule_id} suspended: flagged {trip.flagged} of {trip.travellers} travellers "
            f"on {screened[trip.manifest_index][1]} ({_flight(batch[trip.manifest_index])})",
            err=True,
        )
    if as_json:
        now = datetime.now(UTC)
        for hit in score_batch(batch, WatchlistStore(), directory, now, rules, breaker):
            typer.echo(json.dumps(codec.hit_to_json(hit)))
    else:
        per_rule = {rule.column: 0 for rule in rules}
        rows = [] if matched is None else list(matched.iter_rows(named=True))
        if rows:
            typer.echo(f"{'manifest':28} {'flight':32} {'passenger':12} {'role':10} rules")
        for row in rows:
            manifest, source = screened[row["manifest_index"]]
            traveller = manifest.travellers[row["traveller_index"]]
            hit_rules = [rule for rule in rules if row[rule.column]]
            for rule in hit_rules:
                per_rule[rule.column] += 1
            role = manifest_pb2.TravellerRole.Name(traveller.role).removeprefix("TRAVELLER_ROLE_").lower()
            line = (
                f"{source:28} {_flight(manifest):32} "
                f"{codec.passenger_ref(traveller, row['traveller_index']):12} {role:10} "
                + " ".join(rule.id for rule in hit_rules)
            )
            typer.echo(printable(line))  # carriers' references and flight numbers: no terminal controls
        travellers = sum(len(m.travellers) for m in batch)
        typer.echo(f"{len(batch)} manifests, {travellers} travellers screened; hits per rule:")
        for rule in rules:
            typer.echo(f"  {rule.id:32} {per_rule[rule.column]}")
    if problems:
        raise typer.Exit(1)

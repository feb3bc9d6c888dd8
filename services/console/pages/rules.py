"""The member's targeting rules: the rule file the hub holds, edited in the page, checked with the rule language
(`apihub rules check`: every problem at its line, the lines numbered and the erring ones marked), backtested on recent
manifests of flights in the member's jurisdiction (services.console.backtest, as `apihub rules test`), and loaded
through the router (RulesAdmin, as the officer).

Analysts read, check and backtest; loading needs a duty officer. The text goes to the server in a POST body only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import backtest, i18n
from services.console.deps import Analyst, Officer, PostingAnalyst, PostingDutyOfficer, console_of, render
from services.rules.language import RuleLimits, RuleProblem, RuleSet, RulesetError, parse_ruleset, starter_text

router = APIRouter()

# The most characters the editor's form may carry; the rule file's own limit (APIHUB_RULES_MAX_BYTES) is the rule
# language's to check, with a message naming it.
TEXT_MAX = 4 * 1024 * 1024
SOURCE = "rules"


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    problems: tuple[RuleProblem, ...]


def numbered(text: str, problems: list[RuleProblem]) -> list[Line]:
    """The file's lines, numbered from 1, each with the problems found at it (a problem past the last line is put
    on the last)."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    at: dict[int, list[RuleProblem]] = {}
    for problem in problems:
        at.setdefault(min(max(problem.line, 1), len(lines)), []).append(problem)
    return [Line(n, line, tuple(at.get(n, ()))) for n, line in enumerate(lines, start=1)]


def check(console, member: str, text: str) -> tuple[RuleSet | None, list[RuleProblem]]:
    """The rule set, or the problems, as `apihub rules check --member` finds them under the hub's limits."""
    try:
        return parse_ruleset(text, SOURCE, member, RuleLimits.from_settings(console.settings)), []
    except RulesetError as exc:
        return None, list(exc.problems)


def current_rules(console, member: str) -> str | None:
    """The member's rule file as the hub holds it (None: none loaded), from the router (MemberRecords.GetRules)."""
    return console.gateway.rules(member)


_PARTS_LOCK = threading.Lock()


def backtests_of(console) -> backtest.Backtests:
    """The console's backtest runner (kept in Console.extra, made on first use)."""
    with _PARTS_LOCK:
        runner = console.extra.get("rules.backtests")
        if runner is None:
            runner = console.extra["rules.backtests"] = backtest.Backtests(console.settings, console.directory)
        return runner


def _normalised(text: str) -> str:
    # Browsers send a textarea's lines with CRLF: the file is checked, digested and loaded with LF, as saved.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _page(
    request: Request,
    who: Officer,
    text: str,
    status_code: int = 200,
    checked: bool = False,
    ruleset: RuleSet | None = None,
    problems: list[RuleProblem] | None = None,
    **context,
) -> Response:
    return render(
        request,
        "rules.html",
        who,
        status_code=status_code,
        section="rules",
        text=text,
        checked=checked,
        ruleset=ruleset,
        problems=problems or [],
        lines=numbered(text, problems or []) if checked else [],
        hours=backtest.RECENT_HOURS,
        most=backtest.MAX_MANIFESTS,
        **context,
    )


@router.get("/rules")
def rules(request: Request, who: Analyst, loaded: str = "") -> Response:
    console = console_of(request)
    text = current_rules(console, who.code)
    notice = i18n.gettext("Rule file loaded: %(digest)s.", digest=loaded) if loaded.isalnum() else ""
    if text is None:
        return _page(request, who, starter_text(who.code), has_file=False, notice=notice)
    return _page(request, who, text, has_file=True, notice=notice)


@router.post("/rules/check")
def check_rules(request: Request, who: PostingAnalyst, text: Annotated[str, Form(max_length=TEXT_MAX)]) -> Response:
    text = _normalised(text)
    ruleset, problems = check(console_of(request), who.code, text)
    return _page(request, who, text, 200 if ruleset else 422, checked=True, ruleset=ruleset, problems=problems)


@router.post("/rules/backtest")
def backtest_rules(request: Request, who: PostingAnalyst, text: Annotated[str, Form(max_length=TEXT_MAX)]) -> Response:
    console = console_of(request)
    text = _normalised(text)
    ruleset, problems = check(console, who.code, text)
    if ruleset is None:
        return _page(request, who, text, 422, checked=True, problems=problems)
    try:
        result = backtests_of(console).run(f"{who.code}/{who.username}", who.code, ruleset)
    except backtest.BacktestError as exc:
        status = 429 if isinstance(exc, backtest.BacktestBusy) else 503
        error = i18n.gettext(exc.message, **exc.values)
        return _page(request, who, text, status, checked=True, ruleset=ruleset, error=error)
    return _page(request, who, text, checked=True, ruleset=ruleset, result=result)


@router.post("/rules/load")
def load_rules(request: Request, who: PostingDutyOfficer, text: Annotated[str, Form(max_length=TEXT_MAX)]) -> Response:
    console = console_of(request)
    text = _normalised(text)
    ruleset, problems = check(console, who.code, text)
    if ruleset is None:
        error = i18n.gettext("The rule file has problems: nothing was loaded.")
        return _page(request, who, text, 422, checked=True, problems=problems, error=error)
    reply = console.gateway.load_rules(who.code, who.username, text)
    if reply.errors:
        # The router checks with the same language; its answer names the line ("line N") of each problem.
        found = [RuleProblem(_line_of(v.field), "", v.description) for v in reply.errors]
        error = i18n.gettext("The hub refused the rule file: nothing was loaded.")
        return _page(request, who, text, 422, checked=True, problems=found, error=error)
    return RedirectResponse(f"/rules?loaded={reply.digest or ruleset.digest}", status_code=303)


def _line_of(field: str) -> int:
    number = field.removeprefix("line ").strip()
    return int(number) if number.isdigit() else 1

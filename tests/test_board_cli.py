"""`apihub policy` (template, check offline; load, show against the hub) and `apihub hits override` / `hits
overrides`: clear messages with lines and exit statuses, never a traceback; the member's token reaches the router."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.auth import issue_token
from services.board.policy import template_text
from services.cli import app
from tests import routerkit

router = routerkit.router
BAD = "version: 1\nmember: FJI\nfallback: OK_TO_BOARD\nsurprise: yes\n"


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_the_template_is_printed_with_the_members_code(tmp_path):
    result = run("policy", "template", "--member", "fji")
    assert result.exit_code == 0
    assert result.output == template_text("FJI") and "member: FJI" in result.output


def test_check_passes_a_good_file_and_names_each_problem_with_its_line(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(template_text("FJI"))
    bad.write_text(BAD)
    result = run("policy", "check", good)
    assert result.exit_code == 0 and "ok, member FJI (digest " in result.output
    result = run("policy", "check", bad)
    assert result.exit_code == 1
    assert f"{bad}:3: " in result.output and f"{bad}:4: " in result.output
    # The member loading it must be the file's.
    assert run("policy", "check", good, "--member", "TON").exit_code == 1


def test_load_refuses_an_unreadable_file_before_contacting_the_hub(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("member: FJI\n# Île\n".encode("latin-1"))
    result = run("policy", "load", latin, "--member", "FJI", "--token", "t", "--server", "127.0.0.1:1")
    assert result.exit_code == 1 and "not UTF-8" in result.output


@pytest.mark.integration
def test_load_show_override_and_list_against_the_router(router, tmp_path):
    token = issue_token(router.settings, "member", "FJI")
    hub = ("--token", token, "--server", router.address)
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(template_text())
    bad.write_text(BAD)

    result = run("policy", "show", "--member", "FJI", *hub)
    assert result.exit_code == 0 and "no board policy loaded" in result.output
    result = run("policy", "load", bad, "--member", "FJI", *hub)
    assert result.exit_code == 1 and f"{bad}:4: " in result.output and "not loaded: " in result.output
    result = run("policy", "load", good, "--member", "fji", *hub)
    assert result.exit_code == 0 and "Loaded the board policy of FJI (digest " in result.output, result.output
    result = run("policy", "show", "--member", "FJI", *hub)
    assert result.exit_code == 0 and result.output == template_text()

    router.put_hit("FJI", "h-cli-board-1")
    result = run("hits", "override", "h-cli-board-1", "--member", "FJI", *hub)
    assert result.exit_code == 2 and "--reason is required" in result.output
    result = run("hits", "override", "h-cli-board-1", "--member", "FJI", "--reason", "checked at the desk", *hub)
    assert result.exit_code == 0 and "Overrode hit h-cli-board-1 for FJI." in result.output, result.output
    result = run("hits", "overrides", "--member", "FJI", *hub)
    assert result.exit_code == 0 and "h-cli-board-1 stands " in result.output
    assert "checked at the desk" in result.output
    result = run("hits", "override", "h-cli-board-1", "--member", "FJI", "--revoke", *hub)
    assert result.exit_code == 0 and "Withdrew the override of hit h-cli-board-1" in result.output
    assert "h-cli-board-1 withdrawn " in run("hits", "overrides", "--member", "FJI", *hub).output

    # Another member's hit: not found; another member's token: refused.
    ton = ("--token", issue_token(router.settings, "member", "TON"), "--server", router.address)
    result = run("hits", "override", "h-cli-board-1", "--member", "TON", "--reason", "x", *ton)
    assert result.exit_code == 2 and "NOT_FOUND" in result.output
    result = run("hits", "overrides", "--member", "FJI", *ton)
    assert result.exit_code == 2 and "PERMISSION_DENIED" in result.output

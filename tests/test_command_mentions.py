"""Every `apihub <command>` that a message, docstring, comment or document names is a command the CLI has.

The command tree comes from the CLI itself (services.cli's typer app, as click sees it), so a renamed or removed
command fails here wherever a text still names it.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

import pytest
import typer
import typer.main

from services.cli import app

ROOT = Path(__file__).resolve().parents[1]
# Where people read command names: the runtime and the dev code (messages, docstrings, comments), the documents,
# the deployment files.
SOURCES = [
    *sorted((ROOT / "services").rglob("*.py")),
    *sorted((ROOT / "services").rglob("*.xml")),
    *sorted((ROOT / "services").rglob("*.yaml")),
    *sorted((ROOT / "synthetic").rglob("*.py")),
    *sorted((ROOT / "benchmarks").rglob("*.py")),
    *sorted((ROOT / "tools").rglob("*.py")),
    *sorted((ROOT / "proto").rglob("*.proto")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "deploy").rglob("*.y*ml")),
    *[ROOT / name for name in ("README.md", "Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml")],
]
# "apihub" then one or two lowercase words: a command, or a group and one of its commands.
MENTION = re.compile(r"(?<![\w./-])apihub ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
# Texts that start like a command without being one.
NOT_COMMANDS = {
    "apihub audit seal": "the label of the audit seal key's derivation (services/audit.py), a constant",
}


def command_tree():
    """The CLI's commands as its click layer sees them (typer carries its own copy of click: duck-typed here)."""
    return typer.main.get_command(app)


def mentions() -> list[tuple[str, int, str, str | None]]:
    """(file, line, first word, second word or None) of every mention in SOURCES."""
    found = []
    for path in SOURCES:
        if not path.is_file() or "wire" in path.relative_to(ROOT).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in MENTION.finditer(line):
                found.append((str(path.relative_to(ROOT)), number, match.group(1), match.group(2)))
    return found


def word_choices(argument) -> list[str] | None:
    """The words an argument takes when it takes only some (an Enum of choices), else None."""
    annotation = getattr(getattr(argument, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    return None


def problem(tree, first: str, second: str | None) -> str | None:
    """Why `apihub FIRST SECOND` names no command, or None when it does."""
    ctx = typer.Context(tree)
    command = tree.get_command(ctx, first)
    if command is None:
        return f"`apihub {first}`: no such command (commands: {', '.join(tree.list_commands(ctx))})"
    if second is None:
        return None
    if hasattr(command, "list_commands"):  # a group
        if command.get_command(ctx, second) is None:
            names = ", ".join(command.list_commands(ctx))
            return f"`apihub {first} {second}`: `{first}` has no command {second} ({names})"
        return None
    # A command's first argument that takes only some words (`apihub serve ingest|profiler|router`).
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    choices = word_choices(arguments[0]) if arguments else None
    if choices is not None and second not in choices:
        return f"`apihub {first} {second}`: {second} is not one of {', '.join(map(str, choices))}"
    return None


def test_the_sources_mention_commands_at_all():
    # The scan works: the tree is read and the texts hold mentions (a broken pattern would pass everything).
    found = {(first, second) for _file, _line, first, second in mentions()}
    assert ("up", None) in found or any(first == "up" for first, _ in found)
    assert ("hits", "follow") in found
    assert problem(command_tree(), "hits", "follow") is None
    assert problem(command_tree(), "kafka", "stop") is not None
    assert problem(command_tree(), "serve", "ingest") is None
    assert problem(command_tree(), "serve", "webhook") is not None
    assert problem(command_tree(), "nosuch", None) is not None


@pytest.mark.parametrize("source", sorted({file for file, *_ in mentions()}))
def test_every_command_named_in_a_text_exists(source):
    tree = command_tree()
    wrong = []
    for file, line, first, second in mentions():
        if file != source or f"apihub {first} {second}" in NOT_COMMANDS:
            continue
        why = problem(tree, first, second)
        if why is not None:
            wrong.append(f"{file}:{line}: {why}")
    assert not wrong, "\n".join(wrong)

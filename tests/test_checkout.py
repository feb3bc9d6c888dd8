"""services.checkout: dev code is imported by the command that runs it, with a clear error where it is missing."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from services.checkout import DevCodeMissingError, import_dev
from services.cli import app


def test_a_dev_module_of_the_checkout_imports():
    assert import_dev("synthetic.demo", "apihub dev demo-files").__name__ == "synthetic.demo"


def test_a_missing_dev_folder_says_which_command_needs_a_checkout():
    with pytest.raises(DevCodeMissingError, match=r"apihub nothing needs a source checkout: nowhere_dev/ .*make setup"):
        import_dev("nowhere_dev.module", "apihub nothing")


def test_a_dev_module_that_fails_to_import_is_not_mistaken_for_a_missing_folder(tmp_path, monkeypatch):
    (tmp_path / "broken_dev").mkdir()
    (tmp_path / "broken_dev" / "__init__.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_not_installed"):
        import_dev("broken_dev", "apihub nothing")
    sys.modules.pop("broken_dev", None)


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["dev", "demo-files", "DIR"], "apihub dev demo-files"),
        (["model", "train", "--out", "DIR"], "apihub model train"),
    ],
)
def test_dev_commands_without_the_dev_folder_exit_2_with_a_message(args, command, tmp_path, monkeypatch):
    """As in an install without synthetic/ (tests/test_image.py runs the real one): the folder cannot be imported."""
    monkeypatch.setitem(sys.modules, "synthetic", None)
    for name in [m for m in sys.modules if m.startswith("synthetic.")]:
        monkeypatch.delitem(sys.modules, name)
    result = CliRunner().invoke(app, [str(tmp_path) if a == "DIR" else a for a in args])
    assert result.exit_code == 2, result.output
    assert f"{command} needs a source checkout: synthetic/ is not part of this install" in result.output
    assert not list(tmp_path.iterdir())

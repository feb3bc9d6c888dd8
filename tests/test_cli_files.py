"""Files users name to `apihub` commands: watchlist CSVs in other encodings, huge or malformed; missing, unreadable
or directory paths; rule files, manifests, settings files and output directories. Each a clear message naming the
file (and the line or byte where it applies) and an exit status, never a Python traceback."""

from __future__ import annotations

import json
import sys

import pytest
from google.protobuf import json_format
from typer.testing import CliRunner

from services import client
from services.cli import app
from services.userfiles import read_bytes
from services.wire import manifest_pb2

HEADER = ",".join(client.WATCHLIST_COLUMNS)
ROW = "E1,Müller,Jérôme,1980-07-14,M,FJI,,,test,FJI"
TEXT = f"{HEADER}\n{ROW}\n"
# A path that exists, is a file, and cannot be read (EIO at offset 0), even for root: "unreadable" in every sandbox.
UNREADABLE = "/proc/self/mem"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/mem")


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def load(path, *options):
    """`apihub watchlist load`: the file is read (and refused) before the hub is contacted."""
    return run("watchlist", "load", path, "--member", "FJI", "--token", "t", "--server", "127.0.0.1:1", *options)


@pytest.fixture
def manifest(tmp_path):
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", message_ref="FJ911-FILES")
    m.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromJsonString("2026-03-01T07:00:00Z")
    m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="Muller",
        given_names="Jerome",
        passenger_ref="P1",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
    )
    path = tmp_path / "m.json"
    path.write_text(json_format.MessageToJson(m))
    return path


# -- watchlist encodings ---------------------------------------------------------------------------------------


def test_a_latin1_watchlist_is_refused_naming_file_byte_and_line_then_read_with_encoding(tmp_path, manifest):
    path = tmp_path / "wl.csv"
    path.write_bytes(TEXT.encode("latin-1"))
    offset = len(HEADER) + 1 + len("E1,M")
    result = load(path)
    assert result.exit_code == 2
    assert f"{path}: line 2: not UTF-8 text: byte 0xFC at offset {offset}; save it as UTF-8" in result.output
    assert "--encoding" in result.output
    [entry] = client.read_watchlist_file(path, "FJI", 1 << 20, encoding="latin-1")
    assert (entry.surname, entry.given_names) == ("Müller", "Jérôme")
    # The option on the commands: screen reads it offline and finds the traveller; load gets as far as the hub.
    screened = run("screen", "--json", "--encoding", "latin-1", "--watchlist", path, manifest)
    assert screened.exit_code == 0, screened.output
    assert [json.loads(line)["passenger"]["ref"] for line in screened.output.splitlines()][:1] == ["P1"]
    reached = load(path, "--encoding", "latin-1")
    assert reached.exit_code == 3 and "UNAVAILABLE" in reached.output


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32"])
def test_utf8_with_or_without_bom_and_utf16_or_32_with_bom_are_read(tmp_path, encoding):
    path = tmp_path / "wl.csv"
    path.write_bytes(TEXT.encode(encoding))
    [entry] = client.read_watchlist_file(path, "FJI", 1 << 20)
    assert (entry.entry_id, entry.surname, entry.given_names, entry.owner) == ("E1", "Müller", "Jérôme", "FJI")


def test_utf16_without_bom_cp1252_read_as_latin1_and_unknown_encodings_are_explained(tmp_path):
    path = tmp_path / "wl.csv"
    path.write_bytes(TEXT.replace("ü", "u").replace("é", "e").replace("ô", "o").encode("utf-16-le"))
    result = load(path)
    assert result.exit_code == 2
    assert f"{path}: line 1: NUL character at column 2 (a UTF-16 file without its byte order mark?)" in result.output
    path.write_bytes(TEXT.encode("utf-16-be"))  # with letters beyond ASCII, it does not even decode
    assert "not UTF-8 text: byte 0xFC at offset 221 (a UTF-16 file without its byte order mark?)" in load(path).output
    path.write_bytes(TEXT.replace("Müller", "O’Neil").encode("cp1252"))
    result = load(path, "--encoding", "latin-1")
    assert "line 2, surname: control character U+0092 (a cp1252 file read as latin-1? try --encoding cp1252)" in (
        result.output
    )
    assert client.read_watchlist_file(path, "FJI", 1 << 20, "cp1252")[0].surname == "O’Neil"
    result = load(path, "--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding 'klingon'" in result.output


# -- huge and malformed watchlists -------------------------------------------------------------------------------


def test_a_100_mb_watchlist_is_refused_at_the_size_cap_without_reading_it_all(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.write(TEXT.encode())
        f.truncate(100 * 1024 * 1024)  # sparse: 100 MB on paper
    result = load(path)
    assert result.exit_code == 2
    assert f"{path}: the watchlist is larger than 64 MiB (APIHUB_WATCHLIST_FILE_MAX_BYTES)" in result.output
    small = {"APIHUB_WATCHLIST_FILE_MAX_BYTES": "4096"}
    result = run("watchlist", "load", path, "--member", "FJI", "--token", "t", env=small)
    assert "larger than 4 KiB (APIHUB_WATCHLIST_FILE_MAX_BYTES)" in result.output
    # At most the cap and one byte are ever read, whatever the file's size.
    with pytest.raises(Exception, match="larger than 10 bytes"):
        read_bytes(path, "watchlist", 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{HEADER}\n{ROW}" + ",x" * 9990 + "\n", "line 2: 10000 fields, the header has 10"),
        (HEADER + ",x" * 9990 + f"\n{ROW}\n", "line 1: header has 10000 columns, at most 64"),
        (f"{HEADER}\n{ROW[:5]}\x00{ROW[5:]}\n", "line 2: NUL character at column 6"),
        ("", "line 1: header lacks columns"),
        (f"{ROW}\n{ROW}\n", "line 1: header lacks columns"),
        (f"{HEADER}\nE1,{'X' * 200_000},A,1980,M,FJI,,,t,FJI\n", "line 2: not a readable CSV row: field larger than"),
        (HEADER + "\n" + ROW.replace("Mü", "Mü\x1b]0;owned\x07") + "\n", "line 2, surname: control character U+001B"),
        (f"{HEADER}\n{ROW}\n" + ROW.replace("1980-07-14", "1980-13-14") + "\n", "line 3, date_of_birth"),
    ],
    ids=["10,000 columns", "10,000 header columns", "NUL", "empty", "no header", "huge field", "ESC", "bad date"],
)
def test_malformed_watchlists_are_clear_errors_naming_the_line(tmp_path, text, message):
    path = tmp_path / "wl.csv"
    path.write_text(text, encoding="utf-8")
    result = load(path)
    assert result.exit_code == 2
    assert f"{path}: {message}" in result.output
    assert "owned" not in result.output  # values are never echoed: they may be names or document numbers


# -- paths that are missing, directories or unreadable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing.csv", "no such file"), (".", "is a directory, not a file"), (UNREADABLE, "Input/output error")],
    ids=["missing", "directory", "unreadable"],
)
def test_screen_with_a_watchlist_it_cannot_read_names_the_file(tmp_path, manifest, where, reason):
    if where == UNREADABLE and not sys.platform.startswith("linux"):
        pytest.skip("needs /proc/self/mem")
    path = where if where == UNREADABLE else tmp_path / where
    result = run("screen", "--watchlist", path, manifest)
    assert result.exit_code == 2
    assert f"{path}: cannot read the watchlist: {reason}" in result.output


@linux_only
def test_submit_an_unreadable_file_is_a_rejected_receipt_naming_it():
    result = run("submit", "--token", "t", "--server", "127.0.0.1:1", UNREADABLE)
    assert result.exit_code == 1
    assert f"{UNREADABLE}: REJECTED" in result.output
    assert "cannot read the manifest file: Input/output error [unreadable]" in result.output


@linux_only
def test_offline_commands_report_an_unreadable_manifest_and_go_on(tmp_path, manifest):
    rules = tmp_path / "r.yaml"
    rules.write_text("owner: FJI\nrules:\n")
    for args in (["screen", manifest, UNREADABLE], ["rules", "test", rules, manifest, UNREADABLE]):
        result = run(*args)
        assert result.exit_code == 1
        assert f"{UNREADABLE}: cannot read the manifest file: Input/output error" in result.output


# -- rule files ----------------------------------------------------------------------------------------------


def test_rules_check_refuses_hostile_files_with_file_and_line(tmp_path):
    cases = {
        "deep.yaml": ("owner: FJI\nrules: " + "[" * 5000 + "]" * 5000 + "\n", 2, "nested deeper than 32 levels"),
        "nul.yaml": ("owner: FJI\nrules:\n  - id: R\x00\n", 3, "NUL character at column 10: not a text file"),
        "tag.yaml": ("owner: FJI\nrules: !!python/name:os.system ''\n", 2, "YAML tag '!!python/name:os.system'"),
    }
    for name, (text, *_) in cases.items():
        (tmp_path / name).write_text(text)
    result = run("rules", "check", *(tmp_path / name for name in cases))
    assert result.exit_code == 1
    for name, (_, line, message) in cases.items():
        assert f"{tmp_path / name}:{line}: {message}" in result.output


def test_rules_load_refuses_files_it_cannot_send_before_contacting_the_hub(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("owner: FJI\nrules:\n" + "#" * (300 * 1024) + "\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("owner: FJI\n# Île\n".encode("latin-1"))
    expected = {
        big: "the rule file is larger than 256 KiB (APIHUB_RULES_MAX_BYTES)",
        latin: "line 2: not UTF-8 text: byte 0xCE at offset 13",
    }
    if sys.platform.startswith("linux"):
        expected[UNREADABLE] = "cannot read the rule file: Input/output error"
    for path, message in expected.items():
        result = run("rules", "load", path, "--member", "FJI", "--token", "t", "--server", "127.0.0.1:1")
        assert result.exit_code == 1
        assert f"{path}: {message}" in result.output
        assert "UNAVAILABLE" not in result.output


# -- settings files and output directories ------------------------------------------------------------------


def test_unusable_directory_and_sharing_files_are_bad_settings_not_tracebacks(tmp_path, manifest):
    broken = tmp_path / "broken.yaml"
    broken.write_text("members: [\n")
    cases = [
        ({"APIHUB_DIRECTORY_FILE": str(tmp_path / "absent.yaml")}, "APIHUB_DIRECTORY_FILE=", "cannot read it"),
        ({"APIHUB_DIRECTORY_FILE": str(tmp_path)}, "APIHUB_DIRECTORY_FILE=", "cannot read it (Is a directory)"),
        ({"APIHUB_DIRECTORY_FILE": str(broken)}, "APIHUB_DIRECTORY_FILE:", "while parsing"),
        ({"APIHUB_SHARING_FILE": str(broken)}, "APIHUB_SHARING_FILE:", "while parsing"),
    ]
    for env, setting, reason in cases:
        for args in (["screen", manifest], ["topics"]):
            if args == ["topics"] and "SHARING" in setting:
                continue
            result = run(*args, env=env)
            assert result.exit_code == 2, result.output
            assert "bad settings" in result.output and setting in result.output and reason in result.output
    rules = tmp_path / "r.yaml"
    rules.write_text("owner: FJI\nrules:\n")
    result = run("rules", "test", "--directory", tmp_path / "absent.yaml", rules, manifest)
    assert result.exit_code == 2 and "cannot use it: No such file or directory" in result.output


def test_demo_files_into_a_path_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    result = run("dev", "demo-files", target)
    assert result.exit_code == 2
    assert f"{target}: cannot write the demo files there" in result.output


def test_model_commands_name_an_artefact_they_cannot_use(tmp_path, manifest):
    binary = tmp_path / "model.pkl"
    binary.write_bytes(b"\x80\x81 not json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    cases = {
        binary: "model.pkl is not JSON",
        listed: "list.json is not a model's metadata (a JSON object)",
        other: "not a model's metadata (KeyError: 'evaluation')",
    }
    if sys.platform.startswith("linux"):
        cases[UNREADABLE] = "cannot read mem (Input/output error)"
    for path, message in cases.items():
        result = run("model", "show", path)
        assert result.exit_code == 1
        assert f"model artefact {path}: {message}" in result.output
    result = run("model", "explain", binary, manifest)
    assert result.exit_code == 1 and "model.pkl is not JSON" in result.output


def test_dev_certs_into_a_path_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    result = run("dev", "certs", "--out", target)
    assert result.exit_code == 2
    assert f"{target}: cannot write the certificates there" in result.output

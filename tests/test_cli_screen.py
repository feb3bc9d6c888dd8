"""`apihub screen`: the profiler's scoring on files, without Kafka, printing what members would receive."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from services.cli import app


def test_screen_prints_each_hit_once_per_recipient_in_the_follow_format(tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["dev", "demo-files", str(tmp_path)])
    assert made.exit_code == 0, made.output
    manifests = sorted(str(p) for p in tmp_path.glob("manifest-*.json"))
    lists = [arg for p in sorted(tmp_path.glob("watchlist-*.csv")) for arg in ("--watchlist", str(p))]
    result = runner.invoke(app, ["screen", "--json", *lists, *manifests])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    watchlisted = [h for h in hits if any(r["source"] == "watchlist" for r in h["reasons"])]
    assert watchlisted, "the demo files plant a watchlisted traveller"
    for hit in watchlisted:
        assert hit["recipient"] and set(hit) >= {"hit_id", "manifest_id", "flight", "passenger", "score", "reasons"}
    # One line per recipient: the same hit id never twice for one member.
    pairs = [(h["hit_id"], h["recipient"]) for h in hits]
    assert len(pairs) == len(set(pairs))


def test_screen_refuses_a_watchlist_row_without_owner(tmp_path):
    csv = tmp_path / "wl.csv"
    csv.write_text(
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"
        "E1,X,Y,1980,,FJI,,,,\n"
    )
    manifest = tmp_path / "m.json"
    manifest.write_text("{}")
    result = CliRunner().invoke(app, ["screen", "--watchlist", str(csv), str(manifest)])
    assert result.exit_code == 2 and "owner" in result.output


def _weak_match_files(tmp_path):
    """A Fiji watchlist entry and a NAN-TBU flight (Fiji and Tonga) with a traveller who matches it only weakly:
    same name, a date of birth years apart."""
    from google.protobuf import json_format

    from services.wire import manifest_pb2

    csv = tmp_path / "wl.csv"
    csv.write_text(
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"
        "FJI-WL-1,MULLER,JEAN PIERRE,1980-07-14,,,,,people_smuggling,FJI\n"
    )
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", message_ref="FJ911-WEAK")
    m.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromJsonString("2026-03-01T07:00:00Z")
    m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="Muller",
        given_names="Jean-Pierre",
        date_of_birth=manifest_pb2.PartialDate(year=1975, month=1, day=1),
        passenger_ref="FJ911-W",
    )
    manifest = tmp_path / "m.json"
    manifest.write_text(json_format.MessageToJson(m))
    return csv, manifest


def test_screen_applies_each_members_screening_bands_and_shows_the_band(tmp_path):
    runner = CliRunner()
    csv, manifest = _weak_match_files(tmp_path)
    # First the match's score, with Fiji reviewing almost everything.
    probe = runner.invoke(
        app,
        ["screen", "--json", "--watchlist", str(csv), str(manifest)],
        env={"APIHUB_SCREENING_BANDS": json.dumps({"FJI": {"review": 0.3}})},
    )
    assert probe.exit_code == 0, probe.output
    [hit] = [json.loads(line) for line in probe.output.splitlines() if json.loads(line)["recipient"] == "FJI"]
    [reason] = hit["reasons"]
    score = reason["score"]
    assert 0.3 < score < 0.99, "the planted traveller should match the entry only weakly"

    # Fiji's review band is under the score and its alert band above it; Tonga's review band is above it.
    bands = {"FJI": {"alert": score + 0.005, "review": score - 0.005}, "TON": {"alert": 1, "review": score + 0.005}}
    env = {"APIHUB_SCREENING_BANDS": json.dumps(bands)}
    result = runner.invoke(app, ["screen", "--json", "--watchlist", str(csv), str(manifest)], env=env)
    assert result.exit_code == 0, result.output
    [fiji] = [json.loads(line) for line in result.output.splitlines()]  # nothing for Tonga
    assert fiji["recipient"] == "FJI" and fiji["for_review"] is True
    assert [(r["id"], r["band"]) for r in fiji["reasons"]] == [("FJI-WL-1", "review")]

    text = runner.invoke(app, ["screen", "--watchlist", str(csv), str(manifest)], env=env)
    assert text.exit_code == 0, text.output
    [line] = text.output.splitlines()
    assert line.startswith("FJI ") and "[REVIEW]" in line and f"watchlist FJI-WL-1 {score:.2f} review" in line


# Listed people and the way carrier data writes them: the misses the real-world evaluation found in screening
# (benchmarks/quality), each through the command an analyst runs. Synthetic people with real-looking names.
_LISTED = [
    ("WL-1", "HIDAYATULLAH", "", "1968", ("HIDAYATULLAH", "", (1968, 3, 2))),  # single name, list year only
    ("WL-2", "SHAMSUDDIN", "", "1971-05-09", ("SHAMSUDDIN", "FNU", (1971, 5, 9))),  # placeholder for no name
    ("WL-3", "KIM", "SOK CHOL", "1966-04-12", ("KIM", "SKO CHOL", (1966, 4, 12))),  # swap in a 3-letter part
    ("WL-4", "NKUNDA", "LAURENT", "1967-02-06", ("TNKUNDA", "LAUREN", (1967, 2, 6))),  # letter across the space
    ("WL-5", "NOORZAI", "ABDUL BASIR", "1960-03-04", ("NOORZAI, ABDUL", "", (1960, 4, 3))),  # comma, 2 differences
    (
        "WL-6",
        "AL TIKRITI",
        "YASIR SABAWI IBRAHIM HASAN",
        "1968-05-15",
        ("AL-TIKRITI", "YASIR SABAWI IBRAHIM HASAN", (1968, 5, 16)),
    ),
    ("WL-7", "MUJYAMBERE", "LEOPOLD", "1966", ("MUJYAMBERE", "LEOPOLD", (1962, 3, 17))),  # "approximately 1966"
    ("WL-8", "BAASYIR", "ABDUL ROSYID RIDHO", "1974-01-31", ("BA'ASYIR", "ABDUL ROSYID RIDHO", (1974, 1, 32))),
]


def test_screen_finds_listed_people_as_real_carrier_data_writes_them(tmp_path):
    from google.protobuf import json_format

    from services.wire import manifest_pb2

    header = "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner"
    rows = [f"{entry_id},{surname},{given},{dob},,,,,terrorism,FJI" for entry_id, surname, given, dob, _ in _LISTED]
    (tmp_path / "wl.csv").write_text("\n".join([header, *rows]) + "\n")
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", message_ref="FJ911-LISTED")
    m.legs.add(origin="NAN", destination="SYD").scheduled_departure.FromJsonString("2026-12-20T21:00:00Z")
    for entry_id, *_, (surname, given, (year, month, day)) in _LISTED:
        m.travellers.add(
            role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
            surname=surname,
            given_names=given,
            passenger_ref=f"P-{entry_id}",
            date_of_birth=manifest_pb2.PartialDate(year=year, month=month, day=day),
        )
    (tmp_path / "m.json").write_text(json_format.MessageToJson(m))
    result = CliRunner().invoke(
        app, ["screen", "--json", "--watchlist", str(tmp_path / "wl.csv"), str(tmp_path / "m.json")]
    )
    assert result.exit_code == 0, result.output
    found = {
        (hit["passenger"]["ref"], reason["id"]): reason["band"]
        for hit in map(json.loads, result.output.splitlines())
        if hit["recipient"] == "FJI"
        for reason in hit["reasons"]
        if reason["source"] == "watchlist"
    }
    assert set(found) == {(f"P-{entry_id}", entry_id) for entry_id, *_ in _LISTED}  # each one, nothing else
    assert found[("P-WL-3", "WL-3")] == found[("P-WL-4", "WL-4")] == found[("P-WL-6", "WL-6")] == "alert"


def test_a_missing_table_of_traveller_names_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("APIHUB_TRAVELLER_NAMES_FILE", str(tmp_path / "absent.csv"))
    (tmp_path / "m.json").write_text("{}")
    for args in (["screen", str(tmp_path / "m.json")], ["serve", "profiler"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "APIHUB_TRAVELLER_NAMES_FILE" in result.output, result.output
        assert "Traceback" not in result.output

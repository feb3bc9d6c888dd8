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

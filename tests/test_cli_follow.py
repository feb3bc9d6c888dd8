"""`apihub hits follow`: the text form of a member's hit shows the review marker and each match's band, and
nothing from outside that a terminal would obey (escape sequences, controls, bidi overrides)."""

from __future__ import annotations

import json

import pytest

from services.cli import REVIEW_MARKER, follow_lines
from services.codec import hit_to_json
from services.terminal import printable
from services.wire import hit_pb2


def _hit(band, for_review):
    hit = hit_pb2.Hit(hit_id="h-1", recipient="FJI", manifest_id="m-1", score=0.78, for_review=for_review)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["NAN", "TBU"])
    hit.traveller.passenger_ref = "FJ911-W"
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="FJI-WL-1", score=0.78, explanation="weak", band=band)
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_MODEL, id="risk-1", score=0.4, explanation="ranked")
    return hit


def test_a_hit_for_review_is_marked_and_each_watchlist_reason_shows_its_band():
    head, match, model = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_REVIEW, True)))
    assert head.startswith("h-1 FJ911 NAN-TBU") and head.endswith(f"score=0.78 {REVIEW_MARKER}")
    assert match.split()[:4] == ["watchlist", "FJI-WL-1", "0.78", "review"]
    assert model.split()[:4] == ["model", "risk-1", "0.40", "ranked"]  # no band for the model's reason


def test_an_alert_is_not_marked_for_review():
    head, match, _ = follow_lines(hit_to_json(_hit(hit_pb2.SCREENING_BAND_ALERT, False)))
    assert REVIEW_MARKER not in head
    assert match.split()[3] == "alert"


# Carrier-supplied text as an attacker would send it: sets the terminal's title (OSC), clears the screen and moves
# the cursor (CSI, in 7-bit and 8-bit forms), reverses what follows (bidi override), forges a line (newline).
HOSTILE_REF = "FJ911-\x1b]0;you have been owned\x07W\x1b[2J\x1b[1;1H\x9b31m\u202e\u2066"
HOSTILE_NAME = "Nguyễn\u200b\nFJI fake-hit 0.99"
CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + ["\u202e", "\u2066", "\u200b", "\u2028"]


def test_carrier_text_loses_every_terminal_control_and_keeps_its_letters():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.traveller.passenger_ref = HOSTILE_REF
    hit.traveller.surname, hit.traveller.given_names = HOSTILE_NAME, "Лариса 李"
    hit.reasons[0].explanation = "weak\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\"
    lines = follow_lines(hit_to_json(hit))
    assert len(lines) == 3  # no forged line
    for line in lines:
        assert not any(c in line for c in CONTROLS), repr(line)
    head, match, _ = lines
    assert " FJ911-W " in head and "Nguyễn FJI fake-hit 0.99, Лариса 李" in head
    assert "you have been owned" not in head
    assert match.endswith("weaklink")


def test_a_withdrawal_loses_terminal_controls_too():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.state = hit_pb2.HIT_STATE_WITHDRAWN
    hit.traveller.passenger_ref = HOSTILE_REF
    [line] = follow_lines(hit_to_json(hit))
    assert "FJ911-W" in line and not any(c in line for c in CONTROLS)


def test_the_json_form_escapes_every_control():
    hit = _hit(hit_pb2.SCREENING_BAND_ALERT, False)
    hit.traveller.passenger_ref = HOSTILE_REF
    line = json.dumps(hit_to_json(hit))
    assert not any(c in line for c in CONTROLS)
    assert json.loads(line)["passenger"]["ref"] == HOSTILE_REF  # escaped, not lost: evidence stays whole


@pytest.mark.parametrize(
    "text,shown",
    [
        ("FJ911-W", "FJ911-W"),
        ("\x1b]0;title\x07A", "A"),
        ("\x1b]0;title\x1b\\A", "A"),
        ("\x1b]0;unterminated", ""),
        ("\x1bP1$r\x1b\\A", "A"),
        ("\x1b[31;1mred\x1b[0m", "red"),
        ("\x9b2Jx", "x"),
        ("\x1bcreset", "reset"),
        ("a\tb\r\nc", "a b  c"),
        ("abc\u202edef\u2069", "abcdef"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("del\x7f\x85x", "del x"),
        ("محمد 李 Ōkawa Ñandú", "محمد 李 Ōkawa Ñandú"),
    ],
)
def test_printable(text, shown):
    assert printable(text) == shown


def test_screen_prints_carrier_text_without_terminal_controls(tmp_path):
    from google.protobuf import json_format
    from typer.testing import CliRunner

    from services.cli import app
    from services.wire import manifest_pb2

    csv = tmp_path / "wl.csv"
    csv.write_text(
        "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"
        "FJI-WL-1,MULLER,JEAN PIERRE,1980-07-14,,,,,people_smuggling,FJI\n"
    )
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", message_ref="FJ911-ESC")
    m.legs.add(origin="NAN", destination="TBU").scheduled_departure.FromJsonString("2026-03-01T07:00:00Z")
    m.travellers.add(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname="Muller",
        given_names="Jean Pierre",
        date_of_birth=manifest_pb2.PartialDate(year=1980, month=7, day=14),
        passenger_ref=HOSTILE_REF,
    )
    manifest = tmp_path / "m.json"
    manifest.write_text(json_format.MessageToJson(m))
    result = CliRunner().invoke(app, ["screen", "--watchlist", str(csv), str(manifest)])
    assert result.exit_code == 0, result.output
    assert "FJ911-W" in result.output
    assert not any(c in result.output for c in CONTROLS if c != "\n")
    assert all(line.startswith(("FJI ", "TON ")) for line in result.output.splitlines())

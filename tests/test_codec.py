from __future__ import annotations

import pytest

from services.codec import (
    flight_key,
    format_partial_date,
    hit_to_json,
    manifest_id,
    parse_partial_date,
    route_of,
)
from services.wire import hit_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic


@pytest.mark.parametrize("text", ["1980-07-09", "1980-07", "1980", ""])
def test_partial_dates_round_trip(text):
    assert format_partial_date(parse_partial_date(text)) == text


@pytest.mark.parametrize("text", ["1980-13", "1980-02-30", "80-01-01", "1980/01/01", "1980-01-01-01"])
def test_impossible_dates_are_refused(text):
    with pytest.raises(ValueError):
        parse_partial_date(text)


def test_manifest_id_is_stable_for_a_resend_and_differs_by_revision():
    m = DemoTraffic().next_manifest()
    again = manifest_pb2.Manifest()
    again.CopyFrom(m)
    again.received_at.GetCurrentTime()
    assert manifest_id(m) == manifest_id(again)
    again.revision += 1
    assert manifest_id(m) != manifest_id(again)


def test_manifest_id_without_reference_follows_content():
    m = DemoTraffic().next_manifest()
    m.message_ref = ""
    other = manifest_pb2.Manifest()
    other.CopyFrom(m)
    assert manifest_id(m) == manifest_id(other)
    other.travellers[0].seat = "99Z"
    assert manifest_id(m) != manifest_id(other)


def test_route_and_flight_key_of_a_multi_leg_flight():
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911")
    leg1 = m.legs.add(origin="SYD", destination="NAN")
    leg1.scheduled_departure.FromJsonString("2026-12-01T22:00:00Z")
    m.legs.add(origin="NAN", destination="TBU")
    assert route_of(m) == ["SYD", "NAN", "TBU"]
    assert flight_key(m) == "FJ911/2026-12-01/SYD"


def test_hit_json_has_the_documented_fields():
    hit = hit_pb2.Hit(hit_id="h-1", recipient="FJI", manifest_id="m-1", score=0.5)
    hit.flight.carrier, hit.flight.number = "FJ", "911"
    hit.flight.route.extend(["SYD", "NAN"])
    hit.traveller.surname = "TAVOLA"
    hit.traveller.passenger_ref = "P1"
    hit.traveller.documents.add(number="X1")
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="WL-1", score=1.0, explanation="exact")
    out = hit_to_json(hit, cursor=7)
    assert out["passenger"]["document_number"] == "X1"
    assert out["reasons"] == [
        {
            "source": "watchlist",
            "id": "WL-1",
            "score": 1.0,
            "explanation": "exact",
            "owner": "",
            "category": "",
            "band": "",
        }
    ]
    assert out["for_review"] is False
    hit.reasons[0].band, hit.for_review = hit_pb2.SCREENING_BAND_REVIEW, True
    again = hit_to_json(hit)
    assert again["reasons"][0]["band"] == "review" and again["for_review"] is True
    assert set(out["flight"]) >= {"carrier", "number", "departure", "origin", "destination"}
    assert out["cursor"] == 7

from datetime import UTC, date, datetime

import polars as pl
import pytest

from services.profiler.frames import TRAVELLER_SCHEMA, departure_date, manifests_to_frame, normalise_name
from services.profiler.watchlist import watchlist_frame
from services.wire import delivery_pb2, manifest_pb2


def _manifest(travellers, origin="NAN", destination="TBU", departure=datetime(2026, 3, 1, 7, 0, tzinfo=UTC)):
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id="m-test", travellers=travellers)
    leg = manifest.legs.add(origin=origin, destination=destination)
    if departure is not None:
        leg.scheduled_departure.FromDatetime(departure)
    return manifest


def _traveller(surname="Tupou", given="Sione", dob=(1980, 7, 14), expiries=()):
    t = manifest_pb2.Traveller(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=surname,
        given_names=given,
        date_of_birth=manifest_pb2.PartialDate(year=dob[0], month=dob[1], day=dob[2]),
        nationality="ton",
    )
    for y, m, d in expiries:
        t.documents.add(number="X1", expiry=manifest_pb2.PartialDate(year=y, month=m, day=d))
    return t


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Müller", "MUELLER"),  # ICAO 9303 part 3: Ü is written UE
        ("Jean-Pierre", "JEAN PIERRE"),
        ("  jean \t  pierre\n", "JEAN PIERRE"),
        ("O'Neil", "ONEIL"),  # as the MRZ writes it
        ("Tuilaʻepa", "TUILAEPA"),  # ʻokina, U+02BB
        ("Tuila’epa", "TUILAEPA"),  # typographic apostrophe
        ("St. John", "ST JOHN"),
        ("Ōtara", "OTARA"),  # macron
        ("Straße", "STRASSE"),
        ("NGUYEN<VAN", "NGUYEN VAN"),  # MRZ filler
        ("Ana\u00a0María", "ANA MARIA"),  # no-break space
        ("Ana–María", "ANA MARIA"),  # en dash
        ("", ""),
    ],
)
def test_normalise_name(raw, key):
    assert normalise_name(raw) == key


def test_traveller_and_watchlist_keys_agree_with_normalise_name():
    names = ["Müller", "MULLER", "Jean-Pierre", "jean  pierre", "Tuilaʻepa", "Ōtara", "Straße", "ﬁfita"]
    frame = manifests_to_frame([_manifest([_traveller(surname=n, given=n) for n in names])])
    entries = watchlist_frame(
        delivery_pb2.Watchlist(
            owner="FJI",
            entries=[
                delivery_pb2.WatchlistEntry(entry_id=f"e{i}", surname=n, given_names=n) for i, n in enumerate(names)
            ],
        )
    )
    expected = [normalise_name(n) for n in names]
    assert frame["surname_key"].to_list() == expected
    assert frame["given_key"].to_list() == expected
    assert entries["surname_key"].to_list() == expected
    assert entries["given_key"].to_list() == expected
    # The variants that must collapse to one key do.
    # ICAO 9303 writes Ü as UE; the matcher's transliteration fold, not the key, equates MUELLER and MULLER.
    assert (expected[0], expected[1]) == ("MUELLER", "MULLER")
    assert expected[2] == expected[3] == "JEAN PIERRE"
    assert expected[7] == "FIFITA"


def test_frame_has_one_row_per_traveller_with_batch_indices_and_types():
    first = _manifest([_traveller(surname="A"), _traveller(surname="B")])
    second = _manifest([_traveller(surname="C")], origin="APW", destination="AKL")
    second.manifest_id = ""  # not yet stamped: the frame derives the id like intake does
    frame = manifests_to_frame([first, second])
    assert frame.schema == pl.Schema(TRAVELLER_SCHEMA)
    assert frame.select("manifest_index", "traveller_index", "surname_key").rows() == [
        (0, 0, "A"),
        (0, 1, "B"),
        (1, 0, "C"),
    ]
    assert frame["manifest_id"][0] == "m-test"
    assert frame["manifest_id"][2].startswith("m-") and frame["manifest_id"][2] != "m-test"
    assert frame["dob"][0] == "1980-07-14"
    assert frame["nationality"][0] == "TON"
    assert frame["role"][0] == manifest_pb2.TRAVELLER_ROLE_PASSENGER


def test_partial_birth_date_keeps_its_precision():
    frame = manifests_to_frame([_manifest([_traveller(dob=(1980, 0, 0)), _traveller(dob=(0, 0, 0))])])
    assert frame["dob"].to_list() == ["1980", ""]


def test_doc_expiry_is_the_earliest_complete_expiry():
    travellers = [
        _traveller(expiries=[(2031, 1, 2), (2027, 5, 6), (2020, 0, 0)]),  # year-only expiry is ignored
        _traveller(expiries=[(2025, 2, 30)]),  # impossible date: ignored
        _traveller(expiries=[]),
    ]
    frame = manifests_to_frame([_manifest(travellers)])
    assert frame["doc_expiry"].to_list() == [date(2027, 5, 6), None, None]


def test_departure_date_is_local_to_the_origin_airport():
    # 07:00 UTC on 1 March is 21:00 on 28 February in Rarotonga (UTC-10), 19:00 on 1 March in Nadi (UTC+12).
    assert departure_date(_manifest([], origin="RAR")) == date(2026, 2, 28)
    assert departure_date(_manifest([], origin="NAN")) == date(2026, 3, 1)
    # 13:00 UTC on 1 March is already 2 March in Nadi.
    assert departure_date(_manifest([], departure=datetime(2026, 3, 1, 13, 0, tzinfo=UTC))) == date(2026, 3, 2)
    # A seaport (no time zone in our tables) falls back to the UTC date; no departure time gives no date.
    late = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    assert departure_date(_manifest([], origin="FJSUV", departure=late)) == date(2026, 3, 1)
    assert departure_date(_manifest([], departure=None)) is None
    frame = manifests_to_frame([_manifest([_traveller()], departure=None)])
    assert frame["departure_date"].to_list() == [None]


def test_empty_batch_gives_an_empty_frame_with_the_schema():
    frame = manifests_to_frame([])
    assert frame.is_empty()
    assert frame.schema == pl.Schema(TRAVELLER_SCHEMA)

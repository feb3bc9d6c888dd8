"""The single-pass reader (frames.read_travellers) and the public wrappers give exactly what the three
separate passes gave before it: manifests_to_frame, add_features and watchlist.document_numbers as they were
(frozen below as the oracle), on demo traffic, the public PAXLST samples, hand-made edge cases and random
manifests. Frames are compared with their dtypes and column order."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal
from samples import GUIDE, astra_interchanges, sample

from benchmarks.model import add_bookings
from services import codec
from services.paxlst.reader import parse_paxlst
from services.profiler.frames import (
    FEATURE_SCHEMA,
    TRAVELLER_SCHEMA,
    add_features,
    complete_date,
    departure_date,
    format_partial_date,
    manifests_to_frame,
    name_key,
    name_keys,
    read_travellers,
)
from services.wire import manifest_pb2
from synthetic.traffic import DemoTraffic

M = manifest_pb2

# -- the oracle: the three passes as they were before read_travellers (frozen copies) ---------------------------


def _old_earliest_expiry(traveller):
    expiries = [d for d in (codec.complete_date(doc.expiry) for doc in traveller.documents) if d is not None]
    return min(expiries, default=None)


def _old_manifests_to_frame(manifests):
    columns = {name: [] for name in TRAVELLER_SCHEMA}
    columns["surname"] = []
    columns["given_names"] = []
    for m, manifest in enumerate(manifests):
        mid = manifest.manifest_id or codec.manifest_id(manifest)
        departure = departure_date(manifest)
        for t, traveller in enumerate(manifest.travellers):
            columns["manifest_index"].append(m)
            columns["traveller_index"].append(t)
            columns["manifest_id"].append(mid)
            columns["carrier"].append(manifest.carrier)
            columns["flight_number"].append(manifest.flight_number)
            columns["departure_date"].append(departure)
            columns["role"].append(traveller.role)
            columns["surname"].append(traveller.surname)
            columns["given_names"].append(traveller.given_names)
            columns["dob"].append(codec.format_partial_date(traveller.date_of_birth))
            columns["nationality"].append(traveller.nationality)
            columns["doc_expiry"].append(_old_earliest_expiry(traveller))
    columns["surname_key"] = columns.pop("surname")
    columns["given_key"] = columns.pop("given_names")
    frame = pl.DataFrame(columns, schema=TRAVELLER_SCHEMA)
    return frame.with_columns(
        surname_key=name_key(pl.col("surname_key")),
        given_key=name_key(pl.col("given_key")),
        nationality=pl.col("nationality").str.to_uppercase(),
    )


_CREW = (M.TRAVELLER_ROLE_CREW, M.TRAVELLER_ROLE_TRANSIT_CREW)
_TRANSIT = (M.TRAVELLER_ROLE_TRANSIT_PASSENGER, M.TRAVELLER_ROLE_TRANSIT_CREW)
_MODES = {M.TRANSPORT_MODE_AIR: "air", M.TRANSPORT_MODE_SEA: "sea"}


def _old_issuing_state(traveller):
    for doc in traveller.documents:
        if doc.issuing_state:
            return doc.issuing_state.strip().upper()
    return None


def _old_add_features(frame, manifests):
    flights = {"manifest_index": [], "transport_mode": [], "ports": [], "transit_ports": []}
    for m, manifest in enumerate(manifests):
        route = codec.route_of(manifest)
        flights["manifest_index"].append(m)
        flights["transport_mode"].append(_MODES.get(manifest.transport_mode))
        flights["ports"].append(route)
        flights["transit_ports"].append(route[1:-1])
    raw = {
        k: []
        for k in ("manifest_index", "traveller_index", "role_code", "issuer", "locator", "booked", "payment", "one_way")
    }
    for m, manifest in enumerate(manifests):
        for t, traveller in enumerate(manifest.travellers):
            raw["manifest_index"].append(m)
            raw["traveller_index"].append(t)
            raw["role_code"].append(traveller.role)
            raw["issuer"].append(_old_issuing_state(traveller))
            raw["locator"].append(traveller.reservation_locator.strip() or None)
            if traveller.HasField("booking"):
                booking = traveller.booking
                raw["booked"].append(codec.complete_date(booking.booking_date))
                raw["payment"].append(booking.payment_form.strip().upper() or None)
                raw["one_way"].append(booking.one_way if booking.HasField("one_way") else None)
            else:
                raw["booked"].append(None)
                raw["payment"].append(None)
                raw["one_way"].append(None)
    travellers = pl.DataFrame(
        raw,
        schema={
            "manifest_index": pl.Int64(),
            "traveller_index": pl.Int64(),
            "role_code": pl.Int32(),
            "issuer": pl.String(),
            "locator": pl.String(),
            "booked": pl.Date(),
            "payment": pl.String(),
            "one_way": pl.Boolean(),
        },
    )
    routes = pl.DataFrame(
        flights,
        schema={
            "manifest_index": pl.Int64(),
            "transport_mode": pl.String(),
            "ports": pl.List(pl.String()),
            "transit_ports": pl.List(pl.String()),
        },
    )
    departure = pl.col("departure_date")
    born = pl.col("dob").str.to_date("%Y-%m-%d", strict=False)
    birthday_later = (departure.dt.month().cast(pl.Int32) * 100 + departure.dt.day().cast(pl.Int32)) < (
        born.dt.month().cast(pl.Int32) * 100 + born.dt.day().cast(pl.Int32)
    )
    nationality = pl.when(pl.col("nationality") != "").then(pl.col("nationality"))
    features = (
        frame.join(travellers, on=["manifest_index", "traveller_index"], how="left", maintain_order="left")
        .join(routes, on="manifest_index", how="left", maintain_order="left")
        .with_columns(
            age=departure.dt.year().cast(pl.Int32) - born.dt.year().cast(pl.Int32) - birthday_later.cast(pl.Int32),
            doc_validity_days=(pl.col("doc_expiry") - departure).dt.total_days().cast(pl.Int32),
            nationality_differs=nationality != pl.col("issuer"),
            role_kind=pl.when(pl.col("role_code").is_in(list(_CREW)))
            .then(pl.lit("crew"))
            .when(pl.col("role_code") == M.TRAVELLER_ROLE_UNSPECIFIED)
            .then(pl.lit("unspecified"))
            .otherwise(pl.lit("passenger")),
            in_transit=pl.col("role_code").is_in(list(_TRANSIT)),
            carrier_code=pl.col("carrier").str.strip_chars().str.to_uppercase(),
            origin=pl.col("ports").list.first(),
            destination=pl.col("ports").list.last(),
            transit_count=pl.col("transit_ports").list.len().cast(pl.Int32),
            reservation_locator=pl.col("locator"),
            party_size=pl.when(pl.col("locator").is_not_null()).then(
                pl.len().over("manifest_index", "locator").cast(pl.Int32)
            ),
            booking_lead_days=(departure - pl.col("booked")).dt.total_days().cast(pl.Int32),
            payment_form=pl.col("payment"),
        )
        .drop("role_code", "issuer", "locator", "booked", "payment")
    )
    return features.with_columns(pl.col(name).cast(dtype) for name, dtype in FEATURE_SCHEMA.items())


def _old_document_numbers(manifests):
    rows, numbers, count = [], [], 0
    for m in manifests:
        for t in m.travellers:
            for d in t.documents:
                if d.number:
                    rows.append(count)
                    numbers.append(d.number)
            count += 1
    flat = pl.DataFrame({"row": rows, "documents": numbers}, schema={"row": pl.Int64, "documents": pl.String})
    lists = flat.group_by("row").agg(pl.col("documents"))
    every = pl.DataFrame({"row": pl.int_range(count, eager=True, dtype=pl.Int64)})
    joined = every.join(lists, on="row", how="left", maintain_order="left")
    return joined["documents"].fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("documents")


def assert_same_as_before(manifests):
    """Every output of the new code equals the oracle's, on this batch."""
    old_frame = _old_manifests_to_frame(manifests)
    old_features = _old_add_features(old_frame, manifests)
    old_documents = _old_document_numbers(manifests)

    batch = read_travellers(manifests)
    assert_frame_equal(batch.frame, old_frame)
    assert_frame_equal(batch.with_features(), old_features)
    assert_series_equal(batch.documents, old_documents)
    plain = read_travellers(manifests, features=False)
    assert plain.inputs is None
    assert_frame_equal(plain.frame, old_frame)
    assert_series_equal(plain.documents, old_documents)
    frame = manifests_to_frame(manifests)
    assert_frame_equal(frame, old_frame)
    assert_frame_equal(add_features(frame, manifests), old_features)
    assert_frame_equal(add_features(old_frame, manifests), old_features)
    # add_features joins on (manifest_index, traveller_index), so a frame of some travellers only still gets theirs.
    some = old_frame.filter(pl.col("traveller_index") % 3 == 1)
    assert_frame_equal(add_features(some, manifests), _old_add_features(some, manifests))


# -- batches -------------------------------------------------------------------------------------------------


def _canonical(manifests):
    for manifest in manifests:
        manifest.manifest_id = codec.manifest_id(manifest)
    return manifests


def _demo(seed, count=12, passengers=None, bookings=True):
    """Demo flights (crew on each, a watchlisted passenger on about a third, routes with a transit stop)."""
    traffic = DemoTraffic(seed=seed, start=datetime(2026, 3, 1, 6, 0, tzinfo=UTC))
    manifests = [traffic.next_manifest(passengers=passengers) for _ in range(count)]
    if bookings:
        add_bookings(manifests, seed)
    return manifests


@pytest.mark.parametrize("seed", [1, 5, 11])
def test_demo_traffic(seed):
    assert_same_as_before(_canonical(_demo(seed)))


def test_demo_traffic_without_ids_or_bookings():
    # manifest_id absent: both compute the content digest per manifest.
    assert_same_as_before(_demo(3, count=6, passengers=40, bookings=False))


def test_benchmark_sized_batch():
    assert_same_as_before(_canonical(_demo(5, count=50, passengers=300)))


def test_paxlst_samples():
    interchanges = [parse_paxlst(sample(GUIDE), today=date(2026, 3, 1))]
    interchanges += [parse_paxlst(data, today=date(2025, 6, 1)) for data in astra_interchanges()]
    manifests = [msg.manifest for ic in interchanges for msg in ic.messages if msg.manifest is not None]
    assert len(manifests) >= 4 and sum(len(m.travellers) for m in manifests) >= 5
    assert_same_as_before(manifests)
    for manifest in manifests:
        assert_same_as_before([manifest])


def test_empty_batches():
    assert_same_as_before([])
    empty = manifest_pb2.Manifest(carrier="FJ", flight_number="1", manifest_id="m-empty")
    assert_same_as_before([empty])
    batch = read_travellers([empty, empty])
    assert batch.frame.schema == pl.Schema(TRAVELLER_SCHEMA)
    assert batch.documents.dtype == pl.List(pl.String) and batch.documents.len() == 0


def _date(y, m, d):
    return M.PartialDate(year=y, month=m, day=d)


# Partial, impossible and out-of-range dates, leap days and the limits of datetime.date.
DATES = [
    (0, 0, 0),
    (1980, 0, 0),
    (1980, 7, 0),
    (1980, 0, 14),
    (0, 7, 14),
    (1980, 7, 14),
    (2023, 2, 29),
    (2024, 2, 29),
    (1900, 2, 29),
    (2000, 2, 29),
    (2026, 4, 31),
    (2026, 4, 30),
    (2026, 12, 31),
    (2026, 13, 1),
    (2026, 1, 32),
    (1, 1, 1),
    (9999, 12, 31),
    (10000, 1, 1),
    (-5, 3, 3),
    (2026, -1, 5),
    (2026, 3, -5),
    (12, 3, 4),
    (123, 1, 1),
]


def test_edge_cases():
    departure = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    manifest = manifest_pb2.Manifest(carrier=" fj ", flight_number="911", manifest_id="m-edge")
    leg = manifest.legs.add(origin="NAN", destination="TBU")
    leg.scheduled_departure.FromDatetime(departure)
    manifest.legs.add(origin="TBU", destination="APW")
    add = manifest.travellers.add
    add()  # nothing at all
    add(surname="Müller", given_names="Jean-Pierre", nationality="deu", role=M.TRAVELLER_ROLE_PASSENGER)
    add(surname="Иванов", given_names="Ёлка", nationality="RUS")  # transliterated
    add(surname="Mr", given_names="Dr John Smith Jr", role=M.TRAVELLER_ROLE_CREW)  # honorifics
    add(surname="Tuilaʻepa", given_names="  ", role=M.TRAVELLER_ROLE_TRANSIT_PASSENGER)
    add(surname="O'Neil", given_names="Sione", role=M.TRAVELLER_ROLE_TRANSIT_CREW, nationality=" ton ")
    for i, (y, m, d) in enumerate(DATES):
        t = add(surname=f"Date{i}", given_names="Ana", date_of_birth=_date(y, m, d), nationality="FJI")
        t.documents.add(number=f"D{i}", issuing_state="fji", expiry=_date(y, m, d))
    # Several documents: the earliest complete expiry, the first issuing state given (even blank), numbers
    # as sent in order, empty numbers left out.
    t = add(surname="Docs", given_names="Many", nationality="TON")
    t.documents.add(number="", issuing_state="", expiry=_date(2030, 1, 1))
    t.documents.add(number="P1", issuing_state=" ", expiry=_date(2029, 2, 30))
    t.documents.add(number="P2", issuing_state="ton", expiry=_date(2028, 5, 5))
    t.documents.add(number="P1", issuing_state="AUS", expiry=_date(2031, 1, 0))
    t = add(surname="Docs", given_names="Empty numbers", nationality="TON")
    t.documents.add(issuing_state=" nzl ")
    t.documents.add(expiry=_date(2027, 1, 1))
    t = add(surname="Docs", given_names="Unicode state", nationality="ß")
    t.documents.add(number="X", issuing_state="ß")
    # Bookings: absent, empty, partial date, blank payment, one_way unset / true / false, locators.
    add(surname="Book", given_names="None", reservation_locator="  ")
    t = add(surname="Book", given_names="Empty", reservation_locator=" ABC123 ")
    t.booking.SetInParent()
    t = add(surname="Book", given_names="Partial", reservation_locator="ABC123")
    t.booking.booking_date.CopyFrom(_date(2026, 2, 0))
    t.booking.payment_form = "  "
    t = add(surname="Book", given_names="One way", reservation_locator="ABC123")
    t.booking.booking_date.CopyFrom(_date(2026, 2, 27))
    t.booking.payment_form = " cc "
    t.booking.one_way = True
    t = add(surname="Book", given_names="Return", reservation_locator="XYZ")
    t.booking.booking_date.CopyFrom(_date(2026, 3, 1))
    t.booking.payment_form = "ca"
    t.booking.one_way = False
    t = add(surname="Book", given_names="Impossible", reservation_locator="XYZ")
    t.booking.booking_date.CopyFrom(_date(2026, 2, 30))

    no_departure = manifest_pb2.Manifest(carrier="NZ", flight_number="946", transport_mode=M.TRANSPORT_MODE_SEA)
    no_departure.legs.add(origin="FJSUV", destination="TOTBU")
    no_departure.travellers.add(surname="Sea", given_names="Farer", role=M.TRAVELLER_ROLE_CREW)
    no_legs = manifest_pb2.Manifest(carrier="PX", flight_number="4", manifest_id="m-nolegs")
    no_legs.travellers.add(surname="Nolegs", given_names="Ana", date_of_birth=_date(1990, 1, 1))
    empty = manifest_pb2.Manifest(carrier="FJ", flight_number="1", manifest_id="m-empty")
    late = manifest_pb2.Manifest(carrier="NZ", flight_number="946", manifest_id="m-late")
    late.legs.add(origin="RAR", destination="AKL").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    )
    late.travellers.add(surname="Late", given_names="Evening", date_of_birth=_date(1990, 2, 28))
    late.travellers.add(surname="Late", given_names="Evening", date_of_birth=_date(1990, 3, 1))

    batch = [manifest, empty, no_departure, no_legs, manifest, late]
    assert_same_as_before(batch)
    assert_same_as_before(list(reversed(batch)))


# Pools the random manifests draw from: names with repeats, scripts, separators, honorifics and blanks.
_NAMES = ["Tupou", "TUPOU", "tupou ", "Müller", "Mueller", "Jean-Pierre", "Ōtara", "Straße", "Ле́в", "李", "O'Neil",
          "Mr", "Dr Sione", "", " ", "ﬁfita", "Nguyen<Van", "Ana\u00a0María", "Tuila’epa", "Smith Mrs"]  # fmt: skip
_STATES = ["", " ", "fji", "FJI", " ton ", "ß", "nzl"]
_LOCATORS = ["", " ", "ABC123", " ABC123", "xyz", "L00001"]
_PAYMENTS = ["", "  ", "cc", "CC", " ca ", "in", "ms"]


def _random_date(rng):
    if rng.random() < 0.15:
        return _date(*rng.choice(DATES))
    day = date(2026, 3, 1) - timedelta(days=rng.randint(-4000, 30000))
    return _date(day.year, day.month, day.day)


def _random_manifest(rng, number):
    manifest = manifest_pb2.Manifest(
        carrier=rng.choice(["FJ", "fj ", "NZ", ""]),
        flight_number=str(rng.randint(1, 999)),
        transport_mode=rng.choice([M.TRANSPORT_MODE_AIR, M.TRANSPORT_MODE_SEA, M.TRANSPORT_MODE_UNSPECIFIED]),
    )
    if rng.random() < 0.7:
        manifest.manifest_id = f"m-{number}"
    ports = rng.sample(["NAN", "SYD", "TBU", "APW", "AKL", "RAR", "HIR", "FJSUV"], rng.randint(0, 4))
    for origin, destination in zip(ports, ports[1:], strict=False):
        leg = manifest.legs.add(origin=origin, destination=destination)
        if rng.random() < 0.9:
            leg.scheduled_departure.FromDatetime(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 72)))
    for _ in range(rng.choice([0, 1, 2, 5, 20])):
        t = manifest.travellers.add(
            role=rng.randint(0, 4),
            surname=rng.choice(_NAMES),
            given_names=rng.choice(_NAMES),
            nationality=rng.choice(["", "fji", "TON", " nzl", "ß"]),
            reservation_locator=rng.choice(_LOCATORS),
        )
        if rng.random() < 0.9:
            t.date_of_birth.CopyFrom(_random_date(rng))
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            doc = t.documents.add(number=rng.choice(["", "P123", "X9", "P123"]), issuing_state=rng.choice(_STATES))
            if rng.random() < 0.9:
                doc.expiry.CopyFrom(_random_date(rng))
        if rng.random() < 0.7:
            t.booking.SetInParent()
            if rng.random() < 0.9:
                t.booking.booking_date.CopyFrom(_random_date(rng))
            t.booking.payment_form = rng.choice(_PAYMENTS)
            if rng.random() < 0.6:
                t.booking.one_way = rng.random() < 0.5
    return manifest


def test_one_document_each():
    # Every traveller with exactly one document: read without grouping documents by traveller.
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="411", manifest_id="m-one")
    manifest.legs.add(origin="NAN", destination="SYD").scheduled_departure.FromDatetime(
        datetime(2026, 3, 1, tzinfo=UTC)
    )
    for i, (y, m, d) in enumerate(DATES):
        t = manifest.travellers.add(surname=f"One{i}", given_names="Doc", nationality=["", "fji", "TON"][i % 3])
        t.documents.add(
            number=["", "P1", " ", "P1"][i % 4], issuing_state=_STATES[i % len(_STATES)], expiry=_date(y, m, d)
        )
    assert_same_as_before([manifest])
    assert_same_as_before([manifest, manifest_pb2.Manifest(carrier="FJ", flight_number="1", manifest_id="m-0")])
    # As many documents as travellers, but two on one and none on another.
    uneven = manifest_pb2.Manifest()
    uneven.CopyFrom(manifest)
    uneven.travellers[1].documents.add(number="P2", issuing_state="TON", expiry=_date(2027, 1, 1))
    del uneven.travellers[2].documents[:]
    assert_same_as_before([uneven])


@pytest.mark.parametrize("seed", range(8))
def test_random_manifests(seed):
    rng = random.Random(seed)
    assert_same_as_before([_random_manifest(rng, n) for n in range(rng.randint(1, 12))])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12) | st.sampled_from(_NAMES), max_size=30))
def test_name_keys_equal_name_key(names):
    expected = pl.DataFrame({"n": names}, schema={"n": pl.String}).select(name_key(pl.col("n")))["n"]
    assert name_keys(pl.Series("n", names, dtype=pl.String)).to_list() == expected.to_list()


def test_date_expressions_match_codec():
    grid = ((y, m, d) for y in (1600, 1700, 1999, 2000, 2024) for m in range(14) for d in (0, 1, 28, 29, 30, 31, 32))
    parts = [*DATES, *grid]
    frame = pl.DataFrame(parts, schema={"y": pl.Int32, "m": pl.Int32, "d": pl.Int32}, orient="row")
    got = frame.select(
        complete=complete_date(pl.col("y"), pl.col("m"), pl.col("d")),
        text=format_partial_date(pl.col("y"), pl.col("m"), pl.col("d")),
    )
    assert got["complete"].to_list() == [codec.complete_date(_date(*p)) for p in parts]
    assert got["text"].to_list() == [codec.format_partial_date(_date(*p)) for p in parts]

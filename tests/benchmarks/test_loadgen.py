"""The load generator: repeatable, realistic in shape, and the pacer's schedule (no timings asserted)."""

from benchmarks.loadgen import AIRCRAFT, FLIGHTS, PacedRun, PacificTraffic, TrafficMix, pace, schedule
from services.geo import port_country
from services.wire import manifest_pb2


def _fingerprint(m: manifest_pb2.Manifest) -> bytes:
    c = manifest_pb2.Manifest()
    c.CopyFrom(m)
    c.ClearField("sent_at")  # stamped when built
    return c.SerializeToString(deterministic=True)


def test_same_seed_same_traffic():
    a = PacificTraffic(seed=5).take(40)
    b = PacificTraffic(seed=5).take(40)
    assert [_fingerprint(m) for m in a] == [_fingerprint(m) for m in b]
    c = PacificTraffic(seed=6).take(40)
    assert [_fingerprint(m) for m in a] != [_fingerprint(m) for m in c]


def test_mix_has_flights_cruises_crew_and_amendments():
    ms = PacificTraffic(seed=3, mix=TrafficMix(cruise_share=0.1, amendment_share=0.1)).take(300)
    sea = [m for m in ms if m.transport_mode == manifest_pb2.TRANSPORT_MODE_SEA]
    air = [m for m in ms if m.transport_mode == manifest_pb2.TRANSPORT_MODE_AIR]
    changes = [m for m in ms if m.function == manifest_pb2.MESSAGE_FUNCTION_CHANGE]
    assert sea and air and changes
    # Cruise calls carry thousands, on UN/LOCODE seaports of real countries.
    assert max(len(m.travellers) for m in sea) > 1500
    for m in sea:
        for leg in m.legs:
            assert len(leg.origin) == 5 and port_country(leg.origin)
    # Flights never exceed their aircraft's seats (plus crew and one planted traveller).
    seats = max(AIRCRAFT.values())
    assert all(len(m.travellers) <= seats + 2 + seats // 50 + 1 for m in air if m.function == 1)
    assert all(
        any(t.role == manifest_pb2.TRAVELLER_ROLE_CREW for t in m.travellers) for m in air + sea if m.function == 1
    )
    # Amendments cancel one reservation of an earlier manifest of the same flight.
    assert all(m.amendment == manifest_pb2.AMENDMENT_CANCELLED_RESERVATION and len(m.travellers) == 1 for m in changes)


def test_message_refs_unique_and_airports_known():
    ms = PacificTraffic(seed=9, run="T").take(200)
    refs = [m.message_ref for m in ms]
    assert len(set(refs)) == len(refs)
    for _, _, route, aircraft, _ in FLIGHTS:
        assert aircraft in AIRCRAFT
        assert all(port_country(p) for p in route), route


def test_cruise_cap_is_respected():
    ms = PacificTraffic(seed=1, mix=TrafficMix(cruise_share=0.5, max_cruise_passengers=100)).take(50)
    for m in ms:
        if m.transport_mode == manifest_pb2.TRANSPORT_MODE_SEA:
            passengers = [t for t in m.travellers if t.role == manifest_pb2.TRAVELLER_ROLE_PASSENGER]
            assert len(passengers) <= 101


def test_schedule_is_bounded_by_rate_duration_and_count():
    assert schedule(10, 2, 1000) == [i / 10 for i in range(20)]
    assert len(schedule(1000, 60, 50)) == 50
    assert schedule(0, 10, 10) == [] and schedule(5, 0, 10) == []


def test_pace_sends_everything_in_order_with_a_fake_clock():
    sent = []
    run = pace(list(range(5)), sent.append, rate=1e6, duration=1.0, workers=1)
    assert sorted(sent) == [0, 1, 2, 3, 4]
    assert isinstance(run, PacedRun) and run.completed == 5 and run.errors == 0


def test_pace_counts_failures():
    def fail(item):
        if item % 2:
            raise RuntimeError("rejected")

    run = pace(list(range(6)), fail, rate=1e6, duration=1.0, workers=2)
    assert run.errors == 3 and run.completed == 3

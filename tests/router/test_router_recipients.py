from services.router.recipients import recipients
from services.wire import hit_pb2


def test_overlapping_itinerary_reaches_every_member_on_the_route(directory, fakes):
    hit = fakes.make_hit("h1", ["SYD", "NAN", "TBU"])

    got = recipients(hit, directory)

    assert got == {"AUS", "FJI", "TON"}
    assert "WSM" not in got


def test_transit_port_counts_as_much_as_origin_and_destination(directory, fakes):
    # Nadi is only a transit here; Fiji still has jurisdiction.
    assert "FJI" in recipients(fakes.make_hit("h1", ["AKL", "NAN", "APW"]), directory)
    assert recipients(fakes.make_hit("h1", ["AKL", "NAN", "APW"]), directory) == {"NZL", "FJI", "WSM"}


def test_sea_route_with_unlocodes(directory, fakes):
    assert recipients(fakes.make_hit("h1", ["FJSUV", "TOTBU", "WSAPW"]), directory) == {"FJI", "TON", "WSM"}


def test_unknown_port_is_ignored(directory, fakes):
    assert recipients(fakes.make_hit("h1", ["NAN", "QQQ", "XXABC"]), directory) == {"FJI"}


def test_route_outside_the_region_has_no_recipient(directory, fakes):
    assert recipients(fakes.make_hit("h1", ["LHR", "CDG"]), directory) == set()


def test_territories_go_to_the_member_listing_them(directory, fakes):
    # Norfolk Island (NLK) is Australian jurisdiction in the shipped directory.
    assert recipients(fakes.make_hit("h1", ["NLK"]), directory) == {"AUS"}


def test_origin_and_destination_used_when_route_is_empty(directory):
    hit = hit_pb2.Hit(hit_id="h1")
    hit.flight.origin, hit.flight.destination = "NAN", "TBU"

    assert recipients(hit, directory) == {"FJI", "TON"}


def test_watchlist_owner_outside_the_route_does_not_receive_yet(directory, fakes):
    # The sharing policy is a later issue: until then, owning the matched entry is not enough.
    hit = fakes.make_hit("h1", ["SYD", "NAN"])
    hit.reasons.add(source=hit_pb2.REASON_SOURCE_WATCHLIST, id="e1", owner="WSM")

    assert "WSM" not in recipients(hit, directory)

from services.router.recipients import recipients, review_threshold_tailor
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


def _reviewed_hit(*reasons):
    hit = hit_pb2.Hit(hit_id="h-1", score=0.9)
    for source, score in reasons:
        hit.reasons.add(source=source, id=f"r{score}", score=score)
    return hit


def test_model_reasons_reach_each_member_only_at_its_own_threshold():
    tailor = review_threshold_tailor({"FJI": 0.2, "WSM": 0.6}, default=0.4)
    model_only = _reviewed_hit((hit_pb2.REASON_SOURCE_MODEL, 0.5))
    assert tailor(model_only, "FJI").reasons[0].score == 0.5
    assert tailor(model_only, "TON") is not None  # default threshold 0.4
    assert tailor(model_only, "WSM") is None  # 0.5 is under Samoa's 0.6: not for Samoa at all
    both = _reviewed_hit((hit_pb2.REASON_SOURCE_WATCHLIST, 0.9), (hit_pb2.REASON_SOURCE_MODEL, 0.5))
    samoa = tailor(both, "WSM")
    assert [r.source for r in samoa.reasons] == [hit_pb2.REASON_SOURCE_WATCHLIST]
    assert samoa.score == both.score and len(both.reasons) == 2  # the original is untouched
    assert len(tailor(both, "FJI").reasons) == 2

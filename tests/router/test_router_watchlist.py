from datetime import UTC, datetime

import grpc
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from services.bus import Topics
from services.router.admin import (
    ConfigProducer,
    RulesAdminServicer,
    WatchlistAdminServicer,
    normalize_watchlist,
    validate_watchlist,
)
from services.wire import delivery_pb2


def watchlist(owner="FJI", **kwargs) -> delivery_pb2.Watchlist:
    wl = delivery_pb2.Watchlist(owner=owner, **kwargs)
    wl.entries.add(entry_id="e1", surname="SYNTHETIC", given_names="ALPHA")
    wl.entries.add(entry_id="e2", surname="EXAMPLE", owner="FJI")
    return wl


def fields(violations) -> list[tuple[str, str]]:
    return [(v.field, v.code) for v in violations]


# -- validation (pure) -----------------------------------------------------------------------------------


def test_valid_watchlist_has_no_violations():
    assert validate_watchlist(watchlist(), "FJI") == []


def test_missing_entry_id_and_surname_are_required_with_their_index():
    wl = watchlist()
    wl.entries.add(entry_id="e3", surname="  ")
    wl.entries.add(entry_id="", surname="NOID")

    assert fields(validate_watchlist(wl, "FJI")) == [
        ("entries[2].surname", "required"),
        ("entries[3].entry_id", "required"),
    ]


def test_duplicate_entry_id_names_the_first_use():
    wl = watchlist()
    wl.entries.add(entry_id="e1", surname="AGAIN")

    (violation,) = validate_watchlist(wl, "FJI")

    assert (violation.field, violation.code) == ("entries[2].entry_id", "duplicate")
    assert "entries[0]" in violation.description


def test_entry_owned_by_another_member_is_refused():
    wl = watchlist()
    wl.entries.add(entry_id="e3", surname="OTHER", owner="WSM")

    assert fields(validate_watchlist(wl, "FJI")) == [("entries[2].owner", "owner_mismatch")]


def test_unknown_scope_value_is_refused():
    wl = watchlist()
    wl.scope = 42  # proto3 enums are open: a newer client could send anything

    assert fields(validate_watchlist(wl, "FJI")) == [("scope", "invalid_value")]


def test_normalize_sets_owner_default_scope_and_loaded_at():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    stored = normalize_watchlist(watchlist(), "FJI", now)

    assert stored.scope == delivery_pb2.WATCHLIST_SCOPE_REGIONAL
    assert [e.owner for e in stored.entries] == ["FJI", "FJI"]
    assert stored.loaded_at.ToDatetime(tzinfo=UTC) == now


def test_normalize_keeps_an_explicit_private_scope():
    stored = normalize_watchlist(watchlist(scope=delivery_pb2.WATCHLIST_SCOPE_PRIVATE), "FJI", datetime.now(UTC))

    assert stored.scope == delivery_pb2.WATCHLIST_SCOPE_PRIVATE


# -- the servicer ------------------------------------------------------------------------------------------


def admin(unit_settings, directory, producer):
    return WatchlistAdminServicer(unit_settings, directory, producer_factory=lambda: producer, ack_timeout_s=0.1)


def test_load_stores_the_normalized_list_keyed_by_owner(unit_settings, directory, fakes, token_for):
    producer = fakes.Producer()
    svc = admin(unit_settings, directory, producer)

    response = svc.LoadWatchlist(watchlist(), fakes.Context(token_for("member", "FJI")))

    assert response.entries == 2 and not response.errors
    ((topic, key, value),) = producer.sent
    assert topic == Topics(unit_settings.topic_prefix).watchlists
    assert key == b"FJI"
    stored = delivery_pb2.Watchlist.FromString(value)
    assert stored.owner == "FJI" and stored.scope == delivery_pb2.WATCHLIST_SCOPE_REGIONAL
    assert stored.loaded_at.seconds > 0


def test_invalid_list_stores_nothing(unit_settings, directory, fakes, token_for):
    producer = fakes.Producer()
    svc = admin(unit_settings, directory, producer)
    wl = watchlist()
    wl.entries.add(entry_id="e9")

    response = svc.LoadWatchlist(wl, fakes.Context(token_for("member", "FJI")))

    assert response.entries == 0
    assert fields(response.errors) == [("entries[2].surname", "required")]
    assert producer.sent == []


def test_another_members_list_is_permission_denied(unit_settings, directory, fakes, token_for):
    producer = fakes.Producer()
    svc = admin(unit_settings, directory, producer)

    with pytest.raises(fakes.Aborted) as err:
        svc.LoadWatchlist(watchlist(owner="WSM"), fakes.Context(token_for("member", "FJI")))

    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert producer.sent == []


def test_carrier_cannot_load_a_watchlist(unit_settings, directory, fakes, token_for):
    svc = admin(unit_settings, directory, fakes.Producer())

    with pytest.raises(fakes.Aborted) as err:
        svc.LoadWatchlist(watchlist(owner="FJ"), fakes.Context(token_for("carrier", "FJ")))

    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KafkaTimeoutError(), grpc.StatusCode.UNAVAILABLE),
        (MessageSizeTooLargeError(), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
def test_no_success_without_the_brokers_ack(unit_settings, directory, fakes, token_for, error, code):
    topic = Topics(unit_settings.topic_prefix).watchlists
    svc = admin(unit_settings, directory, fakes.Producer(fail_topics={topic: error}))

    with pytest.raises(fakes.Aborted) as err:
        svc.LoadWatchlist(watchlist(), fakes.Context(token_for("member", "FJI")))

    assert err.value.code == code


def test_producer_is_created_once_and_closed(unit_settings, directory, fakes, token_for):
    made = []

    def factory():
        made.append(fakes.Producer())
        return made[-1]

    svc = WatchlistAdminServicer(unit_settings, directory, producer_factory=factory)
    ctx = fakes.Context(token_for("member", "FJI"))
    svc.LoadWatchlist(watchlist(), ctx)
    svc.LoadWatchlist(watchlist(), ctx)
    svc.close()

    assert len(made) == 1
    assert made[0].calls[-1] == ("close",)


def test_both_admin_servicers_store_through_the_producer_they_are_given_and_leave_closing_it_to_its_owner(
    unit_settings, directory, fakes, token_for
):
    made = []

    def factory():
        made.append(fakes.Producer())
        return made[-1]

    shared = ConfigProducer(factory)
    watchlists = WatchlistAdminServicer(unit_settings, directory, producer=shared)
    rules = RulesAdminServicer(unit_settings, directory, producer=shared)
    ctx = fakes.Context(token_for("member", "FJI"))
    watchlists.LoadWatchlist(watchlist(), ctx)
    reply = rules.LoadRules(delivery_pb2.RuleFile(owner="FJI", yaml="owner: FJI\nrules: []\n"), ctx)
    watchlists.close()
    rules.close()

    topics = Topics(unit_settings.topic_prefix)
    assert not reply.errors and len(made) == 1
    assert [(topic, key) for topic, key, _ in made[0].sent] == [(topics.watchlists, b"FJI"), (topics.rules, b"FJI")]
    assert ("close",) not in made[0].calls
    shared.close()
    shared.close()
    assert made[0].calls.count(("close",)) == 1

"""PolicyStore: fed from the compacted board-policies topic, a bad record keeps the member's previous policy."""

from __future__ import annotations

import pytest

from services.board.policy import PolicyError, PolicyStore, default_policy, template_text
from services.wire import check_pb2, hit_pb2

GOOD = b"version: 1\nmember: FJI\nfallback: DO_NOT_BOARD\ndo_not_board:\n  - watchlist: {min_score: 0.5}\n"
STOLEN = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_WATCHLIST, owner="FJI", score=0.9, category="wanted")


def test_empty_store_answers_default_policies():
    store = PolicyStore()
    assert store.owners == []
    assert store.version == 0
    assert store.policy("fji") == default_policy("FJI")
    assert store.loaded("FJI") is None


def test_apply_replace_and_tombstone():
    store = PolicyStore()
    assert store.apply_record(b" fji ", GOOD) == "FJI"
    assert store.owners == ["FJI"]
    assert store.version == 1
    first = store.policy("FJI")
    assert first.fallback == check_pb2.DIRECTIVE_DO_NOT_BOARD
    assert first.decide([STOLEN]) == check_pb2.DIRECTIVE_DO_NOT_BOARD
    assert store.apply_record(b"WSM", template_text("WSM").encode()) == "WSM"
    assert store.owners == ["FJI", "WSM"]
    assert store.version == 2
    # The template placeholder becomes the key's member.
    assert store.apply_record(b"TON", template_text().encode()) == "TON"
    assert store.policy("TON").owner == "TON"
    assert store.apply_record(b"FJI", b"version: 1\nmember: FJI\n") == "FJI"
    assert store.policy("FJI").decide([STOLEN]) == check_pb2.DIRECTIVE_OK_TO_BOARD
    assert store.policy("FJI").digest != first.digest
    assert store.version == 4
    assert store.apply_record(b"FJI", None) == "FJI"
    assert store.policy("FJI") == default_policy("FJI")
    assert store.owners == ["TON", "WSM"]
    assert store.version == 5


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        (b"FJI", b"version: 1\nmember: FJI\nfallback: OK_TO_BOARD\n", PolicyError),
        (b"FJI", b"version: 1\nmember: AUS\n", PolicyError),  # the key names the member
        (b"FJI", b"\xff\xfe not UTF-8", ValueError),
        (b"", GOOD, ValueError),
        (None, GOOD, ValueError),
        (b"\xff", GOOD, ValueError),
    ],
)
def test_bad_record_keeps_the_previous_policy(key, value, error):
    store = PolicyStore()
    store.apply_record(b"FJI", GOOD)
    before = store.policy("FJI")
    with pytest.raises(error):
        store.apply_record(key, value)
    assert store.policy("FJI") is before
    assert store.version == 1
    assert store.owners == ["FJI"]

"""Common-name down-weighting and rarity-weighted name alignment (services/profiler/matching/)."""

import polars as pl
import pytest

from services.profiler.matching import (
    COMMON_NAME_PENALTY,
    UNCOUNTED_DECADES,
    NameCounts,
    Person,
    common_name_penalty,
    compare_names,
    fold_tokens,
    name_rarity,
    score_pair,
)
from services.profiler.watchlist import MATCH_THRESHOLD, REVIEW_THRESHOLD


def _names(rows):
    return pl.DataFrame(rows, schema={"surname_key": pl.String, "given_key": pl.String}, orient="row")


def _rarity():
    """A list of 2,000 names where SMITH and JOHN are each on a quarter, FIFITA and SEMISI on one name."""
    rows = [("SMITH", f"G{i}") for i in range(500)] + [(f"S{i}", "JOHN") for i in range(500)]
    rows += [(f"S{i}", f"G{i}") for i in range(500, 1499)] + [("FIFITA", "SEMISI")]
    return name_rarity(NameCounts.of(_names(rows)))


COMMON = Person("Smith", "John", "1980-07-14")
RARE = Person("Fifita", "Semisi", "1980-07-14")


def _pair(entry, dob="", documents=()):
    """The traveller with the entry's name, this date of birth and these documents, scored with _rarity()."""
    return score_pair(Person(entry.surname, entry.given_names, dob, documents), entry, _rarity())


def test_rarity_counts_names_in_decades_with_a_floor_for_short_lists():
    rarity = _rarity()
    assert rarity["SMITH"] == pytest.approx(1.301, abs=1e-3)  # 500 of 2,000 names, read as 10,000: log10(20)
    assert rarity["FIFITA"] == pytest.approx(UNCOUNTED_DECADES)  # once: as rare as an uncounted part
    short = name_rarity(NameCounts.of(_names([("TUPOU", "SIONE"), ("TUPOU", "MELE"), ("TUPOU", "ANA")])))
    assert short["TUPOU"] == pytest.approx(UNCOUNTED_DECADES - 0.477, abs=1e-3)  # 3 of 3 is not "common"
    # A name counts a part once; a part is as common as the higher of its share on the list and among travellers.
    assert NameCounts.of(_names([("TUPOU TUPOU", "SIONE")])).parts.filter(pl.col("part") == "TUPOU")["count"][0] == 1
    both = name_rarity(NameCounts.of(_names([("TUPOU", "MELE")])), {"TUPOU": 0.5, "LATU": 0.01})
    assert both["TUPOU"] == pytest.approx(0.301, abs=1e-3) and both["MELE"] == UNCOUNTED_DECADES and both["LATU"] == 2.0


def test_a_name_only_match_on_a_common_name_scores_lower_than_on_a_rare_one():
    common, rare = _pair(COMMON), _pair(RARE)
    assert common.dob == rare.dob == "missing"
    assert common.name_score == rare.name_score == 1.0
    assert rare.score >= MATCH_THRESHOLD > common.score
    assert rare.score - common.score == pytest.approx(COMMON_NAME_PENALTY, abs=0.01)
    assert "common name: down-weighted 0.16" in common.explanation
    assert "common name" not in rare.explanation


def test_date_of_birth_and_document_corroboration_lift_a_common_name():
    name_only = _pair(COMMON).score
    year = _pair(COMMON, "1980")
    exact = _pair(COMMON, "1980-07-14")
    document = score_pair(
        Person("SMITH", "JOHN", "", ("TP0012345",)), Person("Smith", "John", "", ("TP0012345",)), _rarity()
    )
    assert name_only < year.score < exact.score
    # A fully common name with the birth year alone reaches the review band, not an alert.
    assert year.dob == "partial_agrees" and REVIEW_THRESHOLD <= year.score < MATCH_THRESHOLD
    assert exact.score == 1.0 and "common name" not in exact.explanation
    assert document.document == "equal" and document.score >= 0.97 and "common name" not in document.explanation
    # Corroboration matters only for common names: a rare name gains nothing more from it.
    assert common_name_penalty(12.0, "missing", "missing") == 0.0
    assert common_name_penalty(2.0, "missing", "missing") == COMMON_NAME_PENALTY
    assert 0 < common_name_penalty(2.0, "partial_agrees", "missing") < COMMON_NAME_PENALTY
    assert common_name_penalty(2.0, "exact", "different") == common_name_penalty(2.0, "conflict", "equal") == 0.0


def test_a_year_only_date_a_year_apart_does_not_carry_a_common_name():
    common, rare = _pair(COMMON, "1981"), _pair(RARE, "1981")
    assert common.dob == rare.dob == "approx_1_year"
    assert common.score < MATCH_THRESHOLD <= rare.score


def test_without_counts_no_name_is_common():
    assert score_pair(Person("SMITH", "JOHN"), COMMON).score == score_pair(Person("FIFITA", "SEMISI"), RARE).score


def test_agreeing_parts_weigh_their_rarity():
    """A shared rare surname says more than a shared common one when the given names differ."""
    rare = score_pair(Person("FIFITA", "PAUL", "1980-07-14"), RARE, _rarity())
    common = score_pair(Person("SMITH", "PAUL", "1980-07-14"), COMMON, _rarity())
    assert rare.name_score > common.name_score
    assert max(rare.score, common.score) < MATCH_THRESHOLD  # still another person


def test_explanations_of_common_names_quote_nothing_personal():
    text = _pair(COMMON, "1980").explanation
    assert "common name" in text
    for personal in ("SMITH", "JOHN", "1980", "07-14"):
        assert personal not in text.upper()


def _compare(traveller, entry):
    tokens = [*traveller[0].split(), *traveller[1].split(), *entry[0].split(), *entry[1].split()]
    return compare_names(*traveller, *entry, fold_tokens(tokens))


def test_first_given_name_missing_costs_more_than_a_middle_name():
    middle = _compare(("PARK", "YUKI"), ("PARK", "YUKI LAKSHMI"))
    first = _compare(("PARK", "LAKSHMI"), ("PARK", "YUKI LAKSHMI"))
    added_first = _compare(("PARK", "YUKI LAKSHMI"), ("PARK", "LAKSHMI"))
    assert middle.score > first.score
    assert middle.score > added_first.score
    assert "first given name among them" in first.explanation
    assert "the first given name among them" in added_first.explanation
    entry = Person("Park", "Yuki Lakshmi", "1968-09-28")
    middle_pair = score_pair(Person("PARK", "YUKI", "1968-09-28"), entry)
    first_pair = score_pair(Person("PARK", "LAKSHMI", "1968-09-28"), entry)
    assert middle_pair.score >= MATCH_THRESHOLD
    assert first_pair.score <= middle_pair.score - 0.1


def test_icao_two_letter_forms_meet_the_plain_letter_and_folds_need_shared_spelling():
    assert _compare(("JENSEN", "SOREN"), ("JENSEN", "SOEREN")).score >= 0.97
    assert _compare(("MULLER", "HANS"), ("MUELLER", "HANS")).score >= 0.97
    # MELE and MALIA fold alike (same consonants) but share too little of their spelling.
    assert "given names not matched" in _compare(("TANGITAU", "MELE"), ("TANGITAU", "MALIA")).explanation
    assert "transliteration" in _compare(("RASHID", "MUHAMMAD"), ("RASHID", "MOHAMMED")).explanation

"""Screening on the kinds of difference real list names and real carrier data show (issue: screening that holds
up on real-world names). Names are real-looking, dates and numbers synthetic; every case is one class of the
quality report (benchmarks/quality): single names, near-miss dates of birth, short-token typos, a letter moved
across a space, order reversed with a comma, and what carriers put in a field with no name."""

import polars as pl
import pytest

from services.profiler.frames import name_key, name_keys
from services.profiler.matching import DOB_TEXT, Person, score_pair
from services.profiler.watchlist import MATCH_THRESHOLD, REVIEW_THRESHOLD, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2

RARE = {}  # no table of common names: every part as rare as an uncounted one


def _pair(traveller: Person, entry: Person):
    return score_pair(traveller, entry)


# -- single names (ICAO 9303: the whole name in the primary identifier) -------------------------------------


def test_a_single_name_with_its_date_of_birth_alerts():
    result = _pair(Person("HIDAYATULLAH", "", "1968-03-02"), Person("Hidayatullah", "", "1968-03-02"))
    assert result.score >= MATCH_THRESHOLD and "single name" in result.explanation


@pytest.mark.parametrize("placeholder", ["FNU", "LNU", "XXX", "fnu"])
def test_a_placeholder_in_the_other_field_is_no_name(placeholder):
    result = _pair(Person("SHAMSUDDIN", placeholder, "1968-03-02"), Person("Shamsuddin", "", "1968-03-02"))
    assert result.score >= MATCH_THRESHOLD and result.name_score == 1.0


def test_a_single_name_needs_its_date_of_birth_to_corroborate_it():
    exact = _pair(Person("SHAMSUDDIN", "", "1968-03-02"), Person("Shamsuddin", "", "1968-03-02"))
    year = _pair(Person("SHAMSUDDIN", "", "1968-03-02"), Person("Shamsuddin", "", "1968"))
    assert exact.score > year.score >= MATCH_THRESHOLD  # a list that records the year only
    undated = _pair(Person("SHAMSUDDIN", "", ""), Person("Shamsuddin", "", "1968"))
    years_off = _pair(Person("SHAMSUDDIN", "", "1971-03-02"), Person("Shamsuddin", "", "1968"))
    # The same name with nothing, or nothing that agrees, to corroborate it: no hit at all.
    assert undated.name_score == years_off.name_score == 1.0
    assert max(undated.score, years_off.score) < REVIEW_THRESHOLD
    # Within a year of a list's year-only date: a little corroboration, for review.
    year_apart = _pair(Person("SHAMSUDDIN", "", "1969-03-02"), Person("Shamsuddin", "", "1968"))
    assert REVIEW_THRESHOLD <= year_apart.score < MATCH_THRESHOLD


def test_a_single_name_matches_an_entry_whose_parts_run_together_are_that_name():
    result = _pair(Person("ABDULRAHMAN", "", "1969-02-03"), Person("Rahman", "Abdul", "1969-02-03"))
    assert result.score >= MATCH_THRESHOLD and "split or joined" in result.explanation


def test_a_letter_swap_in_a_single_name_still_reaches_review():
    result = _pair(Person("AFIZ", "", "1969-05-05"), Person("Faiz", "", "1969-05-05"))
    assert result.score >= REVIEW_THRESHOLD


# -- dates of birth: graded, never a veto --------------------------------------------------------------------

ENTRY = Person("Al-Tikriti", "Yasir Sabawi Ibrahim Hasan", "1968-05-15")


@pytest.mark.parametrize(
    ("dob", "relation", "band"),
    [
        ("1968-05-15", "exact", MATCH_THRESHOLD),
        ("1968-05-16", "day_within_3", MATCH_THRESHOLD),  # a day off
        ("1968-05-21", "day_within_week", MATCH_THRESHOLD),
        ("1968-06-15", "month_off_by_one", MATCH_THRESHOLD),
        ("1968-15-05", "day_month_swapped", MATCH_THRESHOLD),
        ("1969-05-15", "year_off_by_one", MATCH_THRESHOLD),
        ("1968-11-02", "same_year", REVIEW_THRESHOLD),
        ("1969-11-02", "years_off_1", REVIEW_THRESHOLD),
    ],
)
def test_a_rare_complete_name_keeps_a_band_under_a_near_miss_date(dob, relation, band):
    result = _pair(Person("AL TIKRITI", "YASIR SABAWI IBRAHIM HASAN", dob), ENTRY)
    assert result.dob == relation and result.score >= band
    assert DOB_TEXT[relation] in result.explanation


def test_an_impossible_day_as_sent_is_compared_part_by_part():
    entry = Person("Ba'asyir", "Abdul Rosyid Ridho", "1974-01-31")
    result = _pair(Person("BAASYIR", "ABDUL ROSYID RIDHO", "1974-01-32"), entry)
    assert result.dob == "day_within_3" and result.score >= MATCH_THRESHOLD


def test_the_further_the_date_the_lower_the_score():
    scores = [
        _pair(Person("AL TIKRITI", "YASIR SABAWI IBRAHIM HASAN", dob), ENTRY).score
        for dob in ("1968-05-15", "1968-05-17", "1968-05-21", "1968-05-29", "1968-11-02", "1971-11-02", "1990-11-02")
    ]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    assert scores[-1] < REVIEW_THRESHOLD  # dates that agree on nothing sink even a rare name


@pytest.mark.parametrize(
    ("year", "relation"), [("1966", "approx_1_year"), ("1968", "approx_3_years"), ("1960", "approx_5_years")]
)
def test_approximately_a_year_on_the_list_a_few_years_off_reaches_review(year, relation):
    """Many lists record "approximately 1965": a year only, a few years from the traveller's."""
    entry = Person("Noorzai", "Abdul Basir", "1965")
    result = _pair(Person("NOORZAI", "ABDUL BASIR", f"{year}-04-02"), entry)
    assert result.dob == relation and result.score >= REVIEW_THRESHOLD
    far = _pair(Person("NOORZAI", "ABDUL BASIR", "1975-04-02"), entry)
    assert far.dob == "conflict" and far.score < result.score


def test_explanations_name_date_bands_never_the_dates():
    result = _pair(Person("AL TIKRITI", "YASIR SABAWI IBRAHIM HASAN", "1968-05-19"), ENTRY)
    assert "within a week" in result.explanation
    assert not any(text in result.explanation for text in ("1968", "05", "19", "TIKRITI", "YASIR"))


# -- names: short parts, boundaries, order ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("traveller", "entry"),
    [
        (("KIM", "SKO CHOL"), ("Kim", "Sok Chol")),  # two letters swapped in a three-letter part
        (("SSON", "MUN SAN"), ("Son", "Mun San")),  # a letter doubled
        (("CHOOE", "SONG IL"), ("Choe", "Song Il")),
        (("HASHEMI", "AL"), ("Hashemi", "Ali")),  # a letter dropped from a three-letter part
        (("ALFI", "ABDULLAH AHMED ABDULLAH LE"), ("Alfi", "Abdullah Ahmed Abdullah El")),  # EL typed LE
    ],
)
def test_a_slip_in_a_short_part_is_one_edit_not_another_name(traveller, entry):
    assert _pair(Person(*traveller, "1970-01-05"), Person(*entry, "1970-01-05")).score >= MATCH_THRESHOLD


def test_short_parts_still_fail_closed_on_a_changed_letter():
    assert _pair(Person("LI", "WEI", "1970-01-05"), Person("Lu", "Wei", "1970-01-05")).name_score < 0.8


@pytest.mark.parametrize(
    ("traveller", "entry"),
    [
        (("TNKUNDA", "LAUREN"), ("Nkunda", "Laurent")),  # a letter moved across the space
        (("REF GHAZI MOHAMMAD", "AREFULLAHA"), ("Aref Ghazi Mohammad", "Arefullah")),
        (("PATRUSHEV", "NIKOLAI PLAT ONO VICH"), ("Patrushev", "Nikolai Platonovich")),  # one part split in three
    ],
)
def test_a_name_split_differently_is_the_same_name(traveller, entry):
    assert _pair(Person(*traveller, "1967-02-06"), Person(*entry, "1967-02-06")).score >= MATCH_THRESHOLD


def test_order_reversed_with_a_comma_in_one_field_and_another_difference():
    entry = Person("Noorzai", "Abdul Basir", "1960-03-04")
    # The whole name in one field says nothing about which part is the surname: no swapped-fields cost.
    whole = _pair(Person("NOORZAI, ABDUL BASIR", "", "1960-03-04"), entry)
    assert whole.name_score == 1.0 and "swapped" not in whole.explanation
    missing = _pair(Person("NOORZAI, ABDUL", "", "1960-04-03"), entry)  # a part missing, day and month swapped
    assert missing.score >= MATCH_THRESHOLD


def test_digits_and_unencodable_letters_in_names():
    assert _pair(Person("SECH1N", "IG0R", "1960-09-07"), Person("Sechin", "Igor", "1960-09-07")).name_score == 1.0
    assert name_keys(pl.Series(["Mus?ab", "MUS’AB"])).to_list() == ["MUSAB", "MUSAB"]


# -- candidates: the index finds each of these without a full date of birth ---------------------------------


def _entry(entry_id, surname, given, dob):
    y, m, d = ([int(p) for p in dob.split("-")] + [0, 0])[:3]
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname=surname,
        given_names=given,
        date_of_birth=manifest_pb2.PartialDate(year=y, month=m, day=d),
    )


def test_the_index_proposes_single_names_split_names_and_one_typo_in_a_two_part_name():
    store = WatchlistStore({})
    store.apply(
        delivery_pb2.Watchlist(
            owner="FJI",
            entries=[
                _entry("SINGLE", "Faiz", "", "1969"),
                _entry("JOINED", "Rahman", "Abdul", "1971"),
                _entry("SHIFT", "Nkunda", "Laurent", "1967"),
                _entry("TYPO", "Mudacumura", "Sylvestre", "1954"),
                _entry("TYPO2", "Munandar", "Aris", "1971"),
            ],
        )
    )
    travellers = pl.DataFrame(
        {
            "manifest_index": [0] * 5,
            "traveller_index": list(range(5)),
            "surname_key": ["AFIZ", "ABDULRAHMAN", "TNKUNDA", "UMDACUMURA", "MUNANADR"],
            "given_key": ["", "FNU", "LAUREN", "SYLVESTRE", "ARIS"],
            "dob": ["1969-03-03", "1971-06-01", "1967-02-02", "1954", "1971"],
        }
    ).with_columns(name_key(pl.col("surname_key")), name_key(pl.col("given_key")))
    found = store.matches(travellers, threshold=REVIEW_THRESHOLD).select("traveller_index", "entry_id").rows()
    assert found == [(0, "SINGLE"), (1, "JOINED"), (2, "SHIFT"), (3, "TYPO"), (4, "TYPO2")]

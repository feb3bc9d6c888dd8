"""Classes of true pairs (benchmarks/quality/classes.py) on hand-written pairs of each class."""

import polars as pl
import pytest

from benchmarks.quality import classes
from benchmarks.quality.sources import split_full_name
from services.profiler.frames import normalise_name


def classify(traveller: str, entry: str, t_dob: str = "", e_dob: str = "") -> classes.PairClasses:
    """Classes of two full names as written (split and keyed as the sources do)."""
    t_surname, t_given, t_comma = split_full_name(traveller)
    e_surname, e_given, e_comma = split_full_name(entry)
    return classes.classify(
        normalise_name(t_surname),
        normalise_name(t_given),
        t_dob,
        normalise_name(e_surname),
        normalise_name(e_given),
        e_dob,
        t_comma,
        e_comma,
    )


@pytest.mark.parametrize(
    ("traveller", "entry", "expected"),
    [
        ("JANAN AGHA", "Janan Agha", {"exact"}),
        ("KIM SOK CHOL", "KIM SKO CHOL", {"short_token_typo"}),
        ("LAUREN TNKUNDA", "LAURENT NKUNDA", {"boundary"}),
        ("JEANPIERRE DUBOIS", "JEAN PIERRE DUBOIS", {"boundary"}),
        ("NOORZAI, ABDUL BASIR", "ABDUL BASIR NOORZAI", {"exact", "reversed_order"}),
        ("BASIR ABDUL NOORZAI", "ABDUL BASIR NOORZAI", {"exact", "reversed_order"}),
        ("TUPOU SIONE", "SIONE TUPOU", {"exact", "reversed_order"}),
        ("MUNANADR ARIS", "MUNANDAR ARIS", {"typo"}),
        ("MOHAMED ALI HASSAN", "MOHAMMED ALI HASAN", {"typo"}),
        ("YOUSSEF HADDAD", "YUSUF HADDAD", {"transliteration"}),
        ("HANS J FRIEDRICH", "HANS JOACHIM FRIEDRICH", {"initials"}),
        ("MATIULLAH", "MATIULLAH", {"exact", "single_name"}),
        ("AFIZ", "HAFIZ", {"single_name", "typo"}),
        ("AHMED SHAH NOORZAI", "AHMED NOORZAI", {"missing_parts"}),
        ("NIKOLAI PATR USHEV", "NIKOLAI PLATONOVICH PATRUSHEV", {"boundary", "missing_parts"}),
        ("ALI HASSAN", "ALI OMAR", {"other"}),
    ],
)
def test_name_classes(traveller, entry, expected):
    assert set(classify(traveller, entry).names) == expected


def test_a_comma_on_both_sides_is_not_a_reversal():
    assert classify("NOORZAI, ABDUL BASIR", "NOORZAI, ABDUL BASIR").names == ("exact",)


@pytest.mark.parametrize(
    ("traveller", "entry", "expected", "distance", "near"),
    [
        ("1965-03-02", "1965-03-02", "same", None, True),
        ("1965", "1965-03-02", "same", None, True),
        ("1965-03", "1965-03-02", "same", None, True),
        ("", "", "same", None, True),
        ("1965-01-01", "1965-06-15", "same", None, True),  # 1 January: a year-only placeholder
        ("", "1965", "missing", None, False),
        ("1974-01-31", "1974-01-30", "day", 1, True),
        ("1974-01-32", "1974-01-30", "day", 2, True),  # out of range as a carrier sent it
        ("1974-03-05", "1974-04-05", "month", 31, True),
        ("1974-03-05", "1974-09-05", "month", 184, False),
        ("1974-13-05", "1974-12-05", "month", 30, True),
        ("1974-03-05", "1974-05-03", "swap", None, True),
        ("1974-03-05", "1975-03-05", "year", None, True),
        ("1965", "1968-03-02", "approx", None, True),
        ("1965-01-01", "1968-03-02", "approx", None, True),
        ("1970-05", "1971", "approx", None, True),
        ("1960", "1970", "far", None, False),
        ("1974-03-05", "1976-03-05", "far", None, False),
        ("1974-03-05", "1974-06-07", "far", None, False),
    ],
)
def test_date_classes(traveller, entry, expected, distance, near):
    dated = classes.date_class(traveller, entry)
    assert (dated.name, dated.distance) == (expected, distance)
    assert (dated.name == "same" or dated.near_miss) == near
    assert classify("A B", "A B", traveller, entry).same_or_near == near


def test_classify_frame_matches_classify():
    pairs = pl.DataFrame(
        {
            "t_surname": ["CHOL", "NKUNDA", "NOORZAI"],
            "t_given": ["KIM SKO", "LAUREN T", "ABDUL BASIR"],
            "t_dob": ["1970-03-04", "1967-02-02", "1965"],
            "t_comma": [False, False, True],
            "e_surname": ["CHOL", "NKUNDA", "NOORZAI"],
            "e_given": ["KIM SOK", "LAURENT", "ABDUL BASIR"],
            "e_dob": ["1970-04-03", "1967-02-06", "1968-03-02"],
            "e_comma": [False, False, False],
        }
    )
    framed = classes.classify_frame(pairs)
    assert framed["date_class"].to_list() == ["swap", "day", "approx"]
    assert framed["date_distance"].to_list() == [None, 4, None]
    assert framed["near"].to_list() == [True, True, True]
    for row, names in zip(pairs.iter_rows(), framed["name_classes"].to_list(), strict=True):
        ts, tg, td, tc, es, eg, ed, ec = row
        assert tuple(names) == classes.classify(ts, tg, td, es, eg, ed, tc, ec).names

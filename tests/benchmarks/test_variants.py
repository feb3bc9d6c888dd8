"""The generator of the screening quality set and its report (benchmarks/quality/generator.py)."""

import random
from collections import Counter

import polars as pl
import pytest

from benchmarks.quality import generator as variants
from services.profiler.frames import name_keys, normalise_name


def _pool_keys():
    names = {n for givens, surnames in variants.ORIGINS for n in (*givens, *surnames)}
    names |= {n for p in variants.REGIONAL_POPULATIONS for n in (*p.givens, *p.surnames)}
    names |= {*variants.SINGLE_NAMES, *variants.PLACEHOLDERS}
    return {normalise_name(variants.DIACRITICS.get(n, n)) for n in names} | names


def _innocent_parts(quality):
    innocents = quality.travellers.filter(pl.col("kind") == "innocent")
    return {p for name in innocents["surname_key"].to_list() + innocents["given_key"].to_list() for p in name.split()}


def test_by_default_every_innocent_name_part_comes_from_the_pools_of_common_names():
    quality = variants.generate(seed=5, per_variant=2, background=20, decoys=2, innocents=500)
    assert _innocent_parts(quality) <= _pool_keys()


def test_rare_names_draw_parts_from_a_long_tail_and_collide_far_less_often():
    common = variants.generate(seed=5, per_variant=2, background=2_000, decoys=2, innocents=2_000)
    rare = variants.generate(seed=5, per_variant=2, background=2_000, decoys=2, innocents=2_000, rare=0.5)
    tail = _innocent_parts(rare) - _pool_keys()
    assert len(tail) > 500

    def shared(quality):
        listed = {(e.surname.upper(), e.given_names.upper()) for e in quality.entries}
        innocents = quality.travellers.filter(pl.col("kind") == "innocent")
        return sum((s, g) in listed for s, g in innocents.select("surname_key", "given_key").rows())

    assert shared(rare) * 3 < shared(common)


def test_typo_variants_of_short_names_do_not_fail():
    """LIM ANIL: the first edit may leave no part of 4 letters for the second (this used to raise)."""
    entry = variants.Person("LIM", "ANIL", "1980-01-02", "AB1234567")
    for seed in range(200):
        typo = variants._variant("typo_1_2_edits", entry, random.Random(seed))
        assert (typo.surname, typo.given) != ("LIM", "ANIL")
    for seed in range(50):
        person = variants._entry_for("typo_1_2_edits", random.Random(seed))
        assert any(len(part) >= 4 for part in f"{person.surname} {person.given}".split())


# -- the added variant types: what each promises, checked on the generated rows (not how the matcher does) --


@pytest.fixture(scope="module")
def added():
    """Each added type's travellers beside their entries (names keyed as the travellers' are)."""
    quality = variants.generate(
        seed=7, per_variant=150, background=10, decoys=2, innocents=10, types=variants.ADDED_TYPES
    )
    # The generator's names, before the list keeper's diacritics (Søren keys as SOEREN, the traveller's SOREN).
    plain = {shown: name for name, shown in variants.DIACRITICS.items()}
    undisplayed = lambda text: " ".join(plain.get(w, w) for w in text.split())  # noqa: E731
    entries = pl.DataFrame(
        {
            "truth": [e.entry_id for e in quality.entries],
            "e_surname": name_keys(pl.Series([undisplayed(e.surname) for e in quality.entries])),
            "e_given": name_keys(pl.Series([undisplayed(e.given_names) for e in quality.entries])),
            "e_year": [e.date_of_birth.year for e in quality.entries],
            "e_month": [e.date_of_birth.month for e in quality.entries],
            "e_day": [e.date_of_birth.day for e in quality.entries],
        }
    )
    return quality.travellers.join(entries, on="truth")


def _of(added, kind):
    rows = added.filter(pl.col("kind") == kind).to_dicts()
    assert len(rows) == 150
    return rows


def _entry_dob(row):
    return f"{row['e_year']:04d}-{row['e_month']:02d}-{row['e_day']:02d}"


def test_the_added_types_come_after_the_original_ones_and_leave_their_draws_alone():
    assert variants.VARIANT_TYPES[: len(variants.ORIGINAL_TYPES)] == variants.ORIGINAL_TYPES
    assert len(variants.ORIGINAL_TYPES) == 14 and len(variants.ADDED_TYPES) == 7
    everything = variants.generate(seed=3, per_variant=3, background=20, decoys=5, innocents=200)
    original = variants.generate(
        seed=3, per_variant=3, background=20, decoys=5, innocents=200, types=variants.ORIGINAL_TYPES
    )
    assert [e.SerializeToString() for e in everything.entries[: len(original.entries)]] == [
        e.SerializeToString() for e in original.entries
    ]
    kinds = list(variants.ORIGINAL_TYPES)
    assert (
        everything.travellers.filter(pl.col("kind").is_in(kinds))
        .drop("traveller_index")
        .equals(original.travellers.filter(pl.col("kind").is_in(kinds)).drop("traveller_index"))
    )
    assert everything.travellers.columns == [
        "manifest_index",
        "traveller_index",
        "surname_key",
        "given_key",
        "dob",
        "documents",
        "kind",
        "truth",
    ]
    with pytest.raises(ValueError, match="unknown variant types"):
        variants.generate(seed=3, types=("typo",))


def test_single_name_entries_have_one_part_or_the_traveller_runs_their_two_parts_together(added):
    joined = 0
    for row in _of(added, "single_name"):
        assert row["dob"] == _entry_dob(row)
        # One part; name_key keys a placeholder (FNU, LNU, XXX) in the other field as empty.
        assert len(row["surname_key"].split()) == 1 and row["given_key"] == ""
        if row["e_given"]:  # ABDUL / RAHMAN on the list, ABDULRAHMAN travelling
            assert len(row["e_surname"].split()) == len(row["e_given"].split()) == 1
            assert row["surname_key"] == row["e_given"] + row["e_surname"]
            joined += 1
        else:
            assert len(row["e_surname"].split()) == 1 and row["surname_key"] == row["e_surname"]
    assert 25 <= joined <= 75  # about a third


def test_single_name_travellers_carry_a_placeholder_in_a_third_of_cases():
    entry = variants.Person("HIDAYATULLAH", "", "1970-03-04", "AB1234567")
    given = Counter(variants._variant("single_name", entry, random.Random(seed)).given for seed in range(300))
    assert set(given) == {"", *variants.PLACEHOLDERS} and 100 <= given[""] <= 200  # half of the two thirds
    joined = variants.Person("RAHMAN", "ABDUL", "1970-03-04", "AB1234567")
    traveller = variants._variant("single_name", joined, random.Random(1))
    assert (traveller.surname, traveller.given) == ("ABDULRAHMAN", "")


def test_dob_day_off(added):
    for row in _of(added, "dob_day_off"):
        year, month, day = (int(x) for x in row["dob"].split("-"))
        assert (year, month) == (row["e_year"], row["e_month"]) and 1 <= abs(day - row["e_day"]) <= 7
        assert (row["surname_key"], row["given_key"]) == (row["e_surname"], row["e_given"])


def test_dob_month_off(added):
    for row in _of(added, "dob_month_off"):
        year, month, day = (int(x) for x in row["dob"].split("-"))
        assert (year, day) == (row["e_year"], row["e_day"]) and abs(month - row["e_month"]) == 1
        assert (row["surname_key"], row["given_key"]) == (row["e_surname"], row["e_given"])


def test_dob_approx_year(added):
    for row in _of(added, "dob_approx_year"):
        assert row["e_year"] and row["e_month"] == row["e_day"] == 0  # "approximately 1965"
        year, month, day = (int(x) for x in row["dob"].split("-"))
        assert 1 <= abs(year - row["e_year"]) <= 5 and month and day
        assert (row["surname_key"], row["given_key"]) == (row["e_surname"], row["e_given"])


def test_short_token_typo(added):
    for row in _of(added, "short_token_typo"):
        entry = row["e_surname"].split() + ["|"] + row["e_given"].split()
        traveller = row["surname_key"].split() + ["|"] + row["given_key"].split()
        assert len(entry) == len(traveller)
        changed = [(e, t) for e, t in zip(entry, traveller, strict=True) if e != t]
        assert len(changed) == 1
        (before, after) = changed[0]
        assert 2 <= len(before) <= 3 and abs(len(after) - len(before)) <= 1
        if len(after) == len(before):  # two adjacent letters transposed
            assert sorted(after) == sorted(before)
        elif len(after) > len(before):  # a letter doubled
            assert any(after[:i] + after[i + 1 :] == before and after[i] == after[i - 1] for i in range(1, len(after)))
        else:  # a letter dropped, only from 3 letters
            assert len(before) == 3 and any(before[:i] + before[i + 1 :] == after for i in range(3))
        assert row["dob"] == _entry_dob(row)


def test_short_token_typo_of_the_examples():
    entry = variants.Person("KIM", "SOK CHOL", "1970-03-04", "AB1234567")
    typos = {variants._variant("short_token_typo", entry, random.Random(seed)).given for seed in range(300)}
    assert "SKO CHOL" in typos
    son = variants.Person("SON", "MI RAN", "1970-03-04", "AB1234567")
    assert "SSON" in {variants._variant("short_token_typo", son, random.Random(seed)).surname for seed in range(300)}


def test_boundary_shift(added):
    one_field = 0
    for row in _of(added, "boundary_shift"):
        entry, traveller = f"{row['e_surname']} {row['e_given']}", f"{row['surname_key']} {row['given_key']}"
        assert entry.replace(" ", "") == traveller.replace(" ", "")
        assert len(entry.split()) == len(traveller.split()) and entry.split() != traveller.split()
        if row["given_key"]:  # within one field: the other field as on the entry
            assert (row["surname_key"] == row["e_surname"]) != (row["given_key"] == row["e_given"])
        else:  # the whole name in one field, the letter moved between surname and given names
            one_field += 1
            assert traveller.split()[len(row["e_surname"].split()) :] != row["e_given"].split()
        assert row["dob"] == _entry_dob(row)
    assert 20 <= one_field <= 130


def test_boundary_shift_of_the_example():
    entry = variants.Person("MUGISHA", "LAURENT NKUNDA", "1970-03-04", "AB1234567")
    shifted = {variants._variant("boundary_shift", entry, random.Random(seed)).given for seed in range(100)}
    assert {"LAUREN TNKUNDA", "LAURENTN KUNDA"} <= shifted


def test_reversed_comma(added):
    differences = Counter()
    for row in _of(added, "reversed_comma"):
        # name_key turns the comma into a space: "SURNAME, GIVEN" keys as "SURNAME GIVEN" in the surname field.
        assert row["given_key"] == ""
        entry = f"{row['e_surname']} {row['e_given']}".split()
        written = row["surname_key"].split()
        if row["dob"] != _entry_dob(row):
            assert written == entry
            year, month, day = row["dob"].split("-")
            assert (int(year), int(month), int(day)) == (row["e_year"], row["e_day"], row["e_month"])
            differences["dob_swap"] += 1
        elif len(written) == len(entry) - 1:  # a middle name missing
            surname_parts = len(row["e_surname"].split())
            assert written == entry[: surname_parts + 1] + entry[surname_parts + 2 :]
            differences["middle"] += 1
        else:  # one edit in a part of 4+ letters
            changed = [(e, w) for e, w in zip(entry, written, strict=True) if e != w]
            assert len(changed) == 1 and len(changed[0][0]) >= 4
            differences["typo"] += 1
    assert min(differences.values()) >= 25 and len(differences) == 3


def test_reversed_comma_writes_surname_comma_given_in_the_surname_field():
    entry = variants.Person("RAHMAN", "ABDUL KARIM", "1970-03-04", "AB1234567")
    for seed in range(50):
        traveller = variants._variant("reversed_comma", entry, random.Random(seed))
        surname, comma, given = traveller.surname.partition(", ")
        assert traveller.given == "" and comma and len(surname.split()) == 1 and given


def test_regional_innocents_and_single_names_are_in_the_default_set_and_reproducible():
    quality = variants.generate(seed=5, per_variant=1, background=5, decoys=1, innocents=4_000)
    innocents = quality.travellers.filter(pl.col("kind") == "innocent")
    regional = {n for p in variants.REGIONAL_POPULATIONS for n in p.surnames} - {
        n for _, surnames in variants.ORIGINS for n in surnames
    }
    share = innocents.filter(pl.col("surname_key").is_in(list(regional))).height / innocents.height
    # Half the innocents are regional; about half of those have a surname that the four origins do not have.
    assert 0.15 < share < 0.4
    single = innocents.filter(pl.col("surname_key").is_in(variants.SINGLE_NAMES))
    assert 0.005 < single.height / innocents.height < 0.02
    assert set(single["given_key"]) == {""}  # name_key keys a placeholder in the other field as empty
    given = Counter(variants._single_named(random.Random(seed)).given for seed in range(300))
    assert set(given) == {"", *variants.PLACEHOLDERS} and 50 <= sum(given.values()) - given[""] <= 150
    again = variants.generate(seed=5, per_variant=1, background=5, decoys=1, innocents=4_000)
    assert quality.travellers.equals(again.travellers)
    plain = variants.generate(seed=5, per_variant=1, background=5, decoys=1, innocents=4_000, regional=0)
    assert plain.travellers.filter(pl.col("kind") == "innocent")["surname_key"].is_in(list(regional)).sum() == 0

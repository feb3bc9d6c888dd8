"""The generator of the screening quality set and its report (services/profiler/variants.py)."""

import random

import polars as pl

from services.profiler import variants
from services.profiler.frames import normalise_name


def _pool_keys():
    names = {n for givens, surnames in variants.ORIGINS for n in (*givens, *surnames)}
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


def test_the_report_has_a_row_per_variant_type_and_says_why_innocents_alert():
    quality = variants.generate(seed=11, per_variant=20, background=200, decoys=20, innocents=2_000)
    report = variants.evaluate(quality)
    text = variants.format_report(report)
    assert "variant type             travellers   recall  missed  wrong  common" in text
    for kind in variants.VARIANT_TYPES:
        assert any(line.startswith(kind) for line in text.splitlines())
    assert sum(report.innocent_alerts_by_dob.values()) == report.innocents_alerted
    assert report.missed("exact") == 0
    assert "every name part from the pools of common names" in text


def test_several_seeds_give_one_summary_line_each_and_their_mean(capsys):
    small = ["--entries-per-variant", "20", "--background", "200", "--decoys", "20", "--innocents", "500"]
    variants.main(["--report", "--seeds", "11,12,13", *small])
    out = capsys.readouterr().out
    summary = out[out.index("across seeds") :].splitlines()
    assert [line.split()[0] for line in summary[2:]] == ["11", "12", "13", "mean"]
    # The first seed's summary repeats the full table's figures.
    first = variants.evaluate(variants.generate(11, 20, 200, 20, 500), variants.MATCH_THRESHOLD)
    assert float(summary[2].split()[-1]) == round(first.false_alerts_per_10k, 2)

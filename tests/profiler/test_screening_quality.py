"""Screening quality on the generated set (services/profiler/variants.py): the targets of issue 4, item 6.

A moderate set (2,400 entries, 100 travellers per variant type, 600 decoys, 20,000 innocents) keeps this
under a few seconds; `python -m services.profiler.variants --report` measures a larger one.
"""

import pytest

from services.profiler import variants


@pytest.fixture(scope="module")
def report():
    quality = variants.generate(seed=11, per_variant=100, background=1000, decoys=300, innocents=20_000)
    return variants.evaluate(quality)


def test_recall_is_at_least_098_overall_and_high_for_every_variant_type(report):
    assert report.overall_recall >= 0.98, variants.format_report(report)
    for kind in variants.VARIANT_TYPES:
        assert report.counts[kind] == 100
        assert report.recall[kind] >= 0.95, (kind, variants.format_report(report))


def test_precision_is_at_least_095(report):
    assert report.precision >= 0.95, variants.format_report(report)
    # Decoys (same name, another date of birth and document; similar names) are screened and rarely alert.
    decoys = sum(report.false_positives_by_kind.get(k, 0) for k in variants.DECOY_TYPES)
    assert decoys <= 0.01 * sum(report.counts[k] for k in variants.DECOY_TYPES)


def test_at_most_one_false_alert_per_10000_innocent_travellers(report):
    assert report.innocents == 20_000
    assert report.false_alerts_per_10k <= 1.0, variants.format_report(report)


def test_the_set_is_reproducible():
    one = variants.generate(seed=3, per_variant=2, background=5, decoys=2, innocents=10)
    two = variants.generate(seed=3, per_variant=2, background=5, decoys=2, innocents=10)
    assert one.travellers.equals(two.travellers)
    assert [e.SerializeToString() for e in one.entries] == [e.SerializeToString() for e in two.entries]

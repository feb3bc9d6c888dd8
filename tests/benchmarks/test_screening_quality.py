"""Screening quality on a generated set, through the quality report's own code (benchmarks/quality/report.py):
floors that a regression of the matcher would break. The full figures (five tuning and five held-out sets, the
public real-world sources, the naive baseline) come from `python -m benchmarks.quality --report`; this is a
moderate set (2,100 listed travellers of every variant type, 20,000 innocents) that runs in seconds.
"""

import pytest

from benchmarks.quality import generator, report, sources
from services.config import DEFAULT_SCREENING_ALERT, DEFAULT_SCREENING_REVIEW


@pytest.fixture(scope="module")
def metrics():
    screening = sources.generated(21, per_variant=100, background=1000, decoys=300, innocents=20_000)
    screened = report.screen(screening, DEFAULT_SCREENING_REVIEW)
    return report.screening_metrics(screened, sources.TUNING, DEFAULT_SCREENING_ALERT, DEFAULT_SCREENING_REVIEW)


def test_every_variant_type_reaches_a_band(metrics):
    for kind in generator.VARIANT_TYPES:
        row = metrics["kinds"][kind]
        assert row["travellers"] == 100
        # Every kind of variant is found at the review band; at the alert band all but the weakest date
        # evidence (a year-only list date years away, a day or a month off on a common name).
        assert row["recall_review"] >= 0.9, (kind, row)
        assert row["recall_alert"] >= (0.4 if kind == "dob_approx_year" else 0.7), (kind, row)


def test_same_date_and_near_miss_recall(metrics):
    summary = metrics["summary"]
    assert summary["same date"]["recall_alert"] >= 0.98
    assert summary["same or near-miss date"]["recall_review"] >= 0.98
    # The naive matcher (token sort ratio with the birth year) finds fewer listed people at the review band.
    assert summary["all listed"]["recall_review"] > summary["all listed"]["naive_recall"]


def test_precision_and_false_alerts(metrics):
    bands = metrics["bands"]
    assert bands["alert"]["precision"] >= 0.99
    assert bands["alert"]["false_alerts_per_10k"] <= 3.0  # 20,000 innocents: a handful at most
    assert bands["review"]["false_alerts_per_10k"] < bands["naive"]["false_alerts_per_10k"] / 2


def test_the_set_is_reproducible():
    one = generator.generate(seed=3, per_variant=2, background=5, decoys=2, innocents=10)
    two = generator.generate(seed=3, per_variant=2, background=5, decoys=2, innocents=10)
    assert one.travellers.equals(two.travellers)
    assert [e.SerializeToString() for e in one.entries] == [e.SerializeToString() for e in two.entries]

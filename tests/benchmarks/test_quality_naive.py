"""The naive baseline (benchmarks/quality/naive.py): token_sort_ratio >= 88 and birth years within one."""

import time

import numpy as np
import polars as pl

from benchmarks.quality import naive


def frame(rows, id_column):
    ids, surnames, givens, dobs = zip(*rows, strict=True)
    return pl.DataFrame({id_column: list(ids), "surname_key": surnames, "given_key": givens, "dob": dobs})


def test_names_and_birth_years_decide():
    entries = frame(
        [
            ("E1", "NOORZAI", "ABDUL BASIR", "1965"),
            ("E2", "CHOL", "KIM SOK", "1970-03-04"),
            ("E3", "AGHA", "JANAN", ""),
        ],
        "entry_id",
    )
    travellers = frame(
        [
            (0, "ABDUL", "BASIR NOORZAI", "1966-02-03"),  # word order is sorted away; a year apart passes
            (1, "NOORZAI", "ABDUL BASIR", "1967"),  # two years apart: no
            (2, "CHOL", "KIM SKO", "1970-03-04"),  # one transposition in a short name: ratio 92
            (3, "CHOL", "KIM", "1970"),  # a part missing: ratio 80
            (4, "AGHA", "JANAN", "1990"),  # the entry has no year: passes
            (5, "NOORZAI", "ABDUL BASIR", ""),  # the traveller has no year: compared with every entry
        ],
        "traveller_index",
    )
    found = naive.naive_matches(travellers, entries).sort("traveller_index")
    assert found.select("traveller_index", "entry_id").rows() == [(0, "E1"), (2, "E2"), (4, "E3"), (5, "E1")]
    assert found["naive"].to_list()[0] == 1.0
    assert naive.naive_matches(travellers.head(0), entries).is_empty()


def test_pair_scores_are_token_sort_ratio():
    scores = naive.pair_scores(["NOORZAI ABDUL BASIR", "OLAF SCHOLZE"], ["ABDUL BASIR NOORZAI", "ANGELA MERKEL"])
    assert scores[0] == 1.0
    assert scores[1] < 0.5


def test_blocking_keeps_a_large_screening_fast():
    rng = np.random.default_rng(1)
    letters = np.array(list("ABCDEFGHIJKLMNOPRSTUVY"))

    def names(n):
        return ["".join(rng.choice(letters, 7)) for _ in range(n)]

    entries = pl.DataFrame(
        {
            "entry_id": [f"E{i}" for i in range(3_000)],
            "surname_key": names(3_000),
            "given_key": names(3_000),
            "dob": [str(y) for y in rng.integers(1945, 2008, 3_000)],
        }
    )
    travellers = pl.DataFrame(
        {
            "traveller_index": range(20_000),
            "surname_key": names(20_000),
            "given_key": names(20_000),
            "dob": [str(y) for y in rng.integers(1945, 2008, 20_000)],
        }
    )
    listed = entries.head(5).select(
        pl.int_range(20_000, 20_005).alias("traveller_index"), "surname_key", "given_key", "dob"
    )
    travellers = pl.concat([travellers, listed])
    started = time.perf_counter()
    found = naive.naive_matches(travellers, entries)
    assert time.perf_counter() - started < 5
    assert set(found.filter(pl.col("traveller_index") >= 20_000)["entry_id"]) == {f"E{i}" for i in range(5)}

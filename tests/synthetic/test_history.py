import polars as pl

from services.profiler.frames import FEATURE_SCHEMA
from synthetic.history import HISTORY_SCHEMA, PATTERNS, history

# Attributes that must never reach the model, as column names or name parts.
PROTECTED = {
    "nationality",
    "nationality_differs",
    "residence",
    "issuing",
    "issuer",
    "sex",
    "gender",
    "name",
    "surname",
    "given",
    "dob",
    "birth",
    "age",
    "ethnicity",
    "ethnic",
    "religion",
    "country",
    "origin",
    "destination",
    "ports",
}


def _tokens(name: str) -> set[str]:
    return set(name.lower().split("_")) | {name.lower()}


def test_history_is_seeded_and_has_the_schema():
    a = history(5_000, seed=3)
    assert a.schema == pl.Schema(HISTORY_SCHEMA)
    assert a.equals(history(5_000, seed=3))
    assert not a.equals(history(5_000, seed=4))


def test_history_columns_are_add_features_columns_with_the_same_dtypes():
    # The model computes its features from these columns on the history and on live batches alike.
    for column, dtype in HISTORY_SCHEMA.items():
        if column not in ("of_interest", "pattern"):
            assert FEATURE_SCHEMA[column] == dtype, column


def test_history_carries_no_protected_attribute():
    for column in HISTORY_SCHEMA:
        assert not _tokens(column) & PROTECTED, column


def test_every_planted_pattern_occurs_and_raises_the_rate_of_interest():
    frame = history(100_000, seed=1)
    rates = dict(frame.group_by("pattern").agg(pl.col("of_interest").mean()).iter_rows())
    background = rates.pop("")
    assert set(rates) == {name for name, _ in PATTERNS}
    assert background < 0.01
    for name, probability in PATTERNS:
        assert rates[name] > 10 * background, name
        assert abs(rates[name] - probability) < 0.15, name


def test_label_noise_flips_labels():
    clean = history(50_000, seed=2, label_noise=0.0)
    noisy = history(50_000, seed=2, label_noise=0.05)
    flipped = (clean["of_interest"] != noisy["of_interest"]).mean()
    assert 0.03 < flipped < 0.07

"""A labelled synthetic travel history for training and evaluating the risk model (services.profiler.model).

`apihub model train` generates it (from a source checkout) and hands it to services.profiler.training.train.

There is no real labelled data in the project (nor should there be in a repository), so the hub generates
its own: one row per traveller seen on a Pacific flight, with the columns that
services.profiler.frames.add_features derives from API/booking data and that the model reads, plus a label
`of_interest` ("a human review of this traveller was warranted") and `pattern` (which planted pattern, if
any, made it so). The generator is seeded and vectorised (numpy): the same (rows, seed) give the same frame.

Deliberately absent: nationality, residence, issuing state, sex, age, names and routes. They are never
generated, so no model trained here can learn them, even by accident (reference/name-matching.md §6).

Population (before the patterns)
* 94 % passengers, 6 % crew; 8 % of passengers and 20 % of crew are in transit.
* Transit stops on the itinerary: 0 (65 %), 1 (25 %), 2 (8 %), 3 (2 %).
* Document validity left on the day of travel: mostly 6 months to 10 years; 7 % under 6 months; 1 % unknown
  (partial expiry date).
* Booking data for 85 % of passengers and 5 % of crew (carriers that send it). Lead time exponential, mean
  40 days; form of payment CC 78 %, CA or CASH 6 %, IN (invoice) 8 %, MS 5 %, absent 3 %; one-way 30 %
  (5 % unknown). Reservation locator for 90 % of passengers; party size 1 (45 %), 2 (30 %), 3-4 (15 %),
  5-9 (10 %); crew have none.
* An "irregular booking" segment (4 % of passengers) books late (mean 3 days), pays cash half the time, flies
  one-way 70 % of the time and alone or in pairs: these features co-occur in real data too, and most of the
  segment is innocent.

Planted patterns (probability that a matching traveller is of interest)
* LASTMIN_CASH_ONEWAY (0.55): booked at most 3 days before departure, paid in cash (CA/CASH), one-way, party
  of at most 2 under the locator.
* NEAR_EXPIRY_TRANSITS (0.35): document valid for less than 120 days on the day of travel and at least 2
  transit stops.
* CREW_ANOMALY (0.45): a crew member whose record carries a commercial booking paid in cash or one-way
  (positioning crew normally travel on staff tickets without a payment form).
* SAMEDAY_ONEWAY_TRANSIT (0.30): booked on the day of departure, one-way, with at least one transit stop.
* Background (0.1 %): travellers of interest that no pattern describes, so the model cannot be perfect.
The first matching pattern (in this order) names the row's `pattern`; "" for none.

Label noise: every label is flipped with probability `label_noise` (default 0.1 %), as reviews get some
dispositions wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from services.profiler.model import CASH, FEATURE_COLUMNS, ModelArtifact
from services.profiler.training import train

# Columns of history(): the add_features columns the model reads (same names and dtypes), then the labels.
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    **FEATURE_COLUMNS,
    "of_interest": pl.Boolean(),
    "pattern": pl.String(),
}

# (name, probability that a traveller matching it is of interest), in order of precedence.
PATTERNS: tuple[tuple[str, float], ...] = (
    ("LASTMIN_CASH_ONEWAY", 0.55),
    ("NEAR_EXPIRY_TRANSITS", 0.35),
    ("CREW_ANOMALY", 0.45),
    ("SAMEDAY_ONEWAY_TRANSIT", 0.30),
)
BACKGROUND_RATE = 0.001
DEFAULT_LABEL_NOISE = 0.001
# Where train() records the data came from (the metadata's training.source).
SOURCE = "synthetic.history"


def _choice(rng: np.random.Generator, n: int, values: list, p: list[float]) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), size=n, p=p)


def history(rows: int = 200_000, seed: int = 7, label_noise: float = DEFAULT_LABEL_NOISE) -> pl.DataFrame:
    """`rows` synthetic travellers with HISTORY_SCHEMA columns (see the module docstring for the patterns)."""
    rng = np.random.default_rng(seed)
    n = rows
    crew = rng.random(n) < 0.06
    irregular = ~crew & (rng.random(n) < 0.04)
    in_transit = np.where(crew, rng.random(n) < 0.20, rng.random(n) < 0.08)
    transit_count = rng.choice([0, 1, 2, 3], size=n, p=[0.65, 0.25, 0.08, 0.02])

    near = rng.random(n) < 0.07
    validity = np.where(near, rng.integers(0, 183, n), rng.integers(183, 3651, n)).astype(float)
    validity[rng.random(n) < 0.01] = np.nan

    booked = np.where(crew, rng.random(n) < 0.05, rng.random(n) < 0.85)
    booked |= irregular
    lead = np.floor(np.where(irregular, rng.exponential(3.0, n), rng.exponential(40.0, n)))
    lead = np.clip(lead, 0, 330)
    lead[~booked] = np.nan
    payment = _choice(rng, n, ["CC", "CA", "CASH", "IN", "MS", None], [0.78, 0.04, 0.02, 0.08, 0.05, 0.03])
    payment = np.where(irregular & (rng.random(n) < 0.5), _choice(rng, n, ["CA", "CASH"], [0.6, 0.4]), payment)
    payment[~booked] = None
    one_way_p = np.where(irregular, 0.70, 0.30)
    one_way = (rng.random(n) < one_way_p).astype(object)
    one_way[(rng.random(n) < 0.05) | ~booked] = None

    sizes = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9], size=n, p=[0.45, 0.30, 0.09, 0.06, 0.03, 0.03, 0.02, 0.01, 0.01])
    sizes = np.where(irregular, rng.choice([1, 2], size=n, p=[0.6, 0.4]), sizes).astype(float)
    sizes[crew | (rng.random(n) < 0.10)] = np.nan

    frame = pl.DataFrame(
        [
            pl.Series("role_kind", np.where(crew, "crew", "passenger"), pl.String()),
            pl.Series("in_transit", in_transit, pl.Boolean()),
            pl.Series("doc_validity_days", validity, nan_to_null=True).cast(pl.Int32()),
            pl.Series("transit_count", transit_count).cast(pl.Int32()),
            pl.Series("party_size", sizes, nan_to_null=True).cast(pl.Int32()),
            pl.Series("booking_lead_days", lead, nan_to_null=True).cast(pl.Int32()),
            # object arrays (None for absent) go through lists: polars cannot cast an Object column
            pl.Series("payment_form", payment.tolist(), pl.String()),
            pl.Series("one_way", one_way.tolist(), pl.Boolean()),
        ]
    )

    cash = pl.col("payment_form").is_in(list(CASH)).fill_null(False)
    one_way_col = pl.col("one_way").fill_null(False)
    lead_col = pl.col("booking_lead_days")
    matches = {
        "LASTMIN_CASH_ONEWAY": (lead_col <= 3) & cash & one_way_col & (pl.col("party_size") <= 2),
        "NEAR_EXPIRY_TRANSITS": (pl.col("doc_validity_days") < 120) & (pl.col("transit_count") >= 2),
        "CREW_ANOMALY": (pl.col("role_kind") == "crew") & lead_col.is_not_null() & (cash | one_way_col),
        "SAMEDAY_ONEWAY_TRANSIT": (lead_col == 0) & one_way_col & (pl.col("transit_count") >= 1),
    }
    pattern = pl.lit("")
    rate = pl.lit(BACKGROUND_RATE)
    for name, probability in reversed(PATTERNS):  # reversed: the first pattern in PATTERNS wins
        hit = matches[name].fill_null(False)
        pattern = pl.when(hit).then(pl.lit(name)).otherwise(pattern)
        rate = pl.when(hit).then(pl.lit(probability)).otherwise(rate)
    frame = frame.with_columns(pattern=pattern, _rate=rate)
    label = rng.random(n) < frame["_rate"].to_numpy()
    label ^= rng.random(n) < label_noise
    return frame.drop("_rate").with_columns(of_interest=pl.Series(label, dtype=pl.Boolean)).select(list(HISTORY_SCHEMA))


def train_on_history(out_dir: Path, rows: int = 200_000, seed: int = 7, **options: Any) -> ModelArtifact:
    """services.profiler.training.train on `rows` rows of history(seed=seed), split with the same seed, recorded as
    SOURCE in the artefact's metadata; `options` go to train (labels, label_weight, holdout, now, ...)."""
    return train(out_dir, history(rows, seed), source=SOURCE, seed=seed, **options)

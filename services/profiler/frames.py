"""Manifest batches as polars frames: one row per traveller, with the normalised keys screening joins on.

The one implementation lives in the platform, services.rules.frames, since rules are evaluated outside the profiler
too (`apihub rules test`, the member console's backtest); the profiler's modules and their callers import it from
here as they always have.
"""

from __future__ import annotations

from services.rules.frames import (
    FEATURE_SCHEMA,
    HONORIFICS,
    NAME_PLACEHOLDERS,
    TRAVELLER_SCHEMA,
    TravellerBatch,
    add_features,
    complete_date,
    departure_date,
    format_partial_date,
    manifests_to_frame,
    name_key,
    name_keys,
    normalise_name,
    read_travellers,
)

__all__ = [
    "FEATURE_SCHEMA",
    "HONORIFICS",
    "NAME_PLACEHOLDERS",
    "TRAVELLER_SCHEMA",
    "TravellerBatch",
    "add_features",
    "complete_date",
    "departure_date",
    "format_partial_date",
    "manifests_to_frame",
    "name_key",
    "name_keys",
    "normalise_name",
    "read_travellers",
]

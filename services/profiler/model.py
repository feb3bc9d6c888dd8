"""The risk model as the profiler runs it: load a saved artefact, score, explain, pick travellers for review.

What it is
* A scikit-learn Pipeline (median imputation -> standardisation -> LogisticRegression) over MODEL_FEATURES:
  behavioural and document features only, each computed by one polars expression from the columns that
  services.profiler.frames.add_features derives. No nationality, residence, issuing state, sex, age, name
  or route feature (reference/name-matching.md §6); even "nationality differs from the issuing state" is
  left out, because it is a function of nationality.
* Trained offline by services.profiler.training (fitting, evaluation, writing the artefact), on the labelled
  synthetic history that `apihub model train` generates from a source checkout (synthetic.history), optionally
  with members' dispositions as labels. This module holds no training code and imports no generator: a hub
  installed without the dev folders loads and runs a model trained elsewhere.
* An artefact is a directory holding `pipeline.joblib` and `metadata.json` (version, creation time, feature
  list, the code's feature-schema hash, training rows, evaluation, published coefficients, scikit-learn
  version, the pipeline's SHA-256).
* load_model refuses an artefact whose feature list, feature-schema hash, scikit-learn version or pipeline
  checksum differs from what this code expects (habit 8): a model is never scored on features it was not
  trained on. Retraining makes a new version; nothing learns online (CJEU C-817/19).
* Decision support only: services.profiler.scoring turns a probability at or above a member threshold into
  a MODEL reason of category "review", whose hit score is capped (scoring.MODEL_ONLY_CAP) so a model
  never outranks a watchlist or rule hit and never acts alone.

Explanations: for the linear model the contribution of a feature to the log-odds is coefficient x
standardised value (how far this traveller sits from the training mean, in standard deviations). The
three largest contributions are named in plain words with their sign, e.g. "booking lead time short
(+0.82)": never the traveller's values (dates, names, document numbers).

The artefact is a pickle (joblib): load only artefacts your hub trained (the configured model_path),
never one received from elsewhere; the checksum catches corruption and a swapped file, not an attacker
who rewrites both files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import polars as pl
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from services.config import DEFAULT_MODEL_THRESHOLD

MODEL_NAME = "risk"
# Bump when the meaning of a feature changes without its expression text changing (e.g. a new upstream
# definition of a column in frames.add_features): artefacts trained before are then refused.
FEATURE_SCHEMA_VERSION = 1
ARTIFACT_FORMAT = 1
PIPELINE_FILE = "pipeline.joblib"
METADATA_FILE = "metadata.json"
# A traveller is put up for review when the model's probability reaches the threshold of the members with
# jurisdiction over the flight; members set their own (settings), this applies to members that did not.
DEFAULT_THRESHOLD = DEFAULT_MODEL_THRESHOLD
TOP_CONTRIBUTIONS = 3
# Forms of payment (PAXLST / booking data) that count as cash.
CASH = ("CA", "CASH")

# The add_features columns the model's features are computed from, with their dtypes: what a training row
# holds (the synthetic history, disposition labels in services.profiler.labels) besides its label.
FEATURE_COLUMNS: dict[str, pl.DataType] = {
    "role_kind": pl.String(),
    "in_transit": pl.Boolean(),
    "doc_validity_days": pl.Int32(),
    "transit_count": pl.Int32(),
    "party_size": pl.Int32(),
    "booking_lead_days": pl.Int32(),
    "payment_form": pl.String(),
    "one_way": pl.Boolean(),
}


@dataclass(frozen=True)
class ModelFeature:
    """One model input: its name, how it is computed (polars, over add_features columns), and plain words for
    a traveller above the training mean (`high`) and below it (`low`), used in explanations."""

    name: str
    expr: pl.Expr
    high: str
    low: str


_lead = pl.col("booking_lead_days")
_cash = pl.col("payment_form").is_in(list(CASH)).fill_null(False)
_crew = pl.col("role_kind") == "crew"
_flag = pl.Float64()

MODEL_FEATURES: tuple[ModelFeature, ...] = (
    ModelFeature(
        "doc_validity_years",
        (pl.col("doc_validity_days").clip(-365, 3650) / 365.0).cast(_flag),
        "document valid for long",
        "document validity short",
    ),
    ModelFeature(
        "doc_expires_within_6_months",
        pl.col("doc_validity_days").is_between(0, 182).fill_null(False).cast(_flag),
        "document expires within 6 months",
        "document valid beyond 6 months",
    ),
    ModelFeature(
        "doc_expiry_unknown",
        pl.col("doc_validity_days").is_null().cast(_flag),
        "document expiry unknown",
        "document expiry known",
    ),
    ModelFeature(
        "transit_count", pl.col("transit_count").clip(0, 4).cast(_flag), "many transit stops", "few transit stops"
    ),
    ModelFeature("in_transit", pl.col("in_transit").fill_null(False).cast(_flag), "in transit", "not in transit"),
    ModelFeature("crew", _crew.fill_null(False).cast(_flag), "crew member", "passenger"),
    ModelFeature(
        "booking_lead_days", _lead.clip(0, 365).cast(_flag), "booking lead time long", "booking lead time short"
    ),
    ModelFeature(
        "booked_within_3_days",
        (_lead <= 3).fill_null(False).cast(_flag),
        "booked within 3 days of departure",
        "booked more than 3 days ahead",
    ),
    ModelFeature("booking_unknown", _lead.is_null().cast(_flag), "no booking data", "booking data present"),
    ModelFeature("paid_cash", _cash.cast(_flag), "paid in cash", "not paid in cash"),
    ModelFeature(
        "one_way", pl.col("one_way").fill_null(False).cast(_flag), "one-way ticket", "return or unknown ticket"
    ),
    ModelFeature(
        "travelling_alone",
        (pl.col("party_size") == 1).fill_null(False).cast(_flag),
        "alone on the reservation",
        "not alone on the reservation",
    ),
    ModelFeature("party_size", pl.col("party_size").clip(1, 9).cast(_flag), "large travel party", "small travel party"),
    # Two published indicator combinations (starter_rules.yaml LASTMIN-CASH; crew on a commercial booking).
    ModelFeature(
        "last_minute_cash",
        ((_lead <= 3) & _cash).fill_null(False).cast(_flag),
        "last-minute cash booking",
        "not a last-minute cash booking",
    ),
    ModelFeature(
        "crew_with_booking",
        (_crew & _lead.is_not_null()).fill_null(False).cast(_flag),
        "crew member with a commercial booking",
        "no crew booking",
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in MODEL_FEATURES)
# The add_features columns the model reads (for the tests that keep protected attributes out).
INPUT_COLUMNS: frozenset[str] = frozenset(n for f in MODEL_FEATURES for n in f.expr.meta.root_names())


def feature_schema_hash(features: Sequence[ModelFeature] = MODEL_FEATURES) -> str:
    """SHA-256 over the schema version and each feature's name and expression: changes with the code."""
    text = json.dumps([FEATURE_SCHEMA_VERSION, [[f.name, str(f.expr)] for f in features]])
    return hashlib.sha256(text.encode()).hexdigest()


def feature_matrix(frame: pl.DataFrame) -> np.ndarray:
    """MODEL_FEATURES of every row as a float matrix (NaN where unknown: the pipeline imputes), one select."""
    return frame.select(f.expr.alias(f.name) for f in MODEL_FEATURES).to_numpy().astype(np.float64)


class ModelArtifactError(ValueError):
    """An artefact that cannot be used with this code (missing, tampered, or trained on other features)."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (the pipeline's, recorded in its metadata at training)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Contribution:
    feature: str
    words: str
    value: float  # contribution to the log-odds

    def __str__(self) -> str:
        return f"{self.words} ({self.value:+.2f})"


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model: the pipeline and its metadata (as written in metadata.json), loaded or just trained."""

    pipeline: Pipeline
    metadata: Mapping[str, Any]
    path: Path | None = None
    _coef: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_coef", self.pipeline[-1].coef_[0])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        """Probability of "of interest" for every row of an add_features frame: one predict_proba per batch."""
        if frame.is_empty():
            return np.zeros(0)
        return self.pipeline.predict_proba(feature_matrix(frame))[:, 1]

    def contributions(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(standardised values, contributions = coefficient x standardised value in log-odds), each of shape
        (rows, features)."""
        standardised = self.pipeline[:-1].transform(feature_matrix(frame))
        return standardised, standardised * self._coef

    def explain(self, frame: pl.DataFrame, top: int = TOP_CONTRIBUTIONS) -> list[list[Contribution]]:
        """The `top` largest contributions (by size, with sign) of each row, in plain words, largest first.

        The words say on which side of the training mean the traveller is ("booking lead time short"), the
        number how much that moved the log-odds; no value of the traveller is quoted.
        """
        if frame.is_empty():
            return []
        standardised, values = self.contributions(frame)
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
        return [
            [
                Contribution(
                    MODEL_FEATURES[j].name,
                    MODEL_FEATURES[j].high if z[j] > 0 else MODEL_FEATURES[j].low,
                    float(row[j]),
                )
                for j in columns
            ]
            for z, row, columns in zip(standardised, values, order, strict=True)
        ]


def read_metadata(path: Path) -> dict[str, Any]:
    """metadata.json of an artefact directory (or the file itself), without loading the pipeline."""
    path = Path(path)
    meta_path = path / METADATA_FILE if path.is_dir() else path
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelArtifactError(f"model artefact {path}: no {METADATA_FILE}") from None
    except ValueError as exc:  # not JSON, or not text at all (UnicodeDecodeError)
        raise ModelArtifactError(f"model artefact {path}: {meta_path.name} is not JSON ({exc})") from None
    except OSError as exc:
        raise ModelArtifactError(
            f"model artefact {path}: cannot read {meta_path.name} ({exc.strerror or exc})"
        ) from None
    if not isinstance(metadata, dict):
        raise ModelArtifactError(f"model artefact {path}: {meta_path.name} is not a model's metadata (a JSON object)")
    return metadata


def load_model(path: Path | str) -> ModelArtifact:
    """Load an artefact directory (or its metadata.json); refuse one that does not match this code."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    metadata = read_metadata(path)
    where = f"model artefact {directory} (version {metadata.get('version', '?')})"
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ModelArtifactError(f"{where}: format {metadata.get('format')!r}, this code reads {ARTIFACT_FORMAT}")
    features = metadata.get("features")
    if features != list(FEATURE_NAMES):
        missing = sorted(set(FEATURE_NAMES) - set(features or []))
        extra = sorted(set(features or []) - set(FEATURE_NAMES))
        raise ModelArtifactError(
            f"{where}: trained on other features than this code computes "
            f"(missing {missing}, unknown {extra}, or another order); retrain with `apihub model train`"
        )
    if metadata.get("feature_schema_hash") != feature_schema_hash():
        raise ModelArtifactError(
            f"{where}: feature definitions changed since training (schema hash differs); "
            "retrain with `apihub model train`"
        )
    if metadata.get("sklearn_version") != sklearn.__version__:
        raise ModelArtifactError(
            f"{where}: pickled with scikit-learn {metadata.get('sklearn_version')}, running {sklearn.__version__}; "
            "retrain with `apihub model train`"
        )
    pipeline_path = directory / str(metadata.get("pipeline_file", PIPELINE_FILE))
    if not pipeline_path.is_file():
        raise ModelArtifactError(f"{where}: {pipeline_path.name} is missing")
    if file_sha256(pipeline_path) != metadata.get("pipeline_sha256"):
        raise ModelArtifactError(f"{where}: {pipeline_path.name} does not match its recorded SHA-256")
    pipeline = joblib.load(pipeline_path)
    if not isinstance(pipeline, Pipeline) or not isinstance(pipeline[-1], LogisticRegression):
        raise ModelArtifactError(f"{where}: not a Pipeline ending in LogisticRegression")
    if getattr(pipeline, "n_features_in_", len(FEATURE_NAMES)) != len(FEATURE_NAMES):
        raise ModelArtifactError(f"{where}: pipeline expects {pipeline.n_features_in_} features")
    return ModelArtifact(pipeline, metadata, directory)


def load_configured(path: Path | str | None) -> ModelArtifact | None:
    """The worker's one-liner: no path (settings.model_path unset) means no model."""
    return load_model(path) if path else None


# -- review thresholds -------------------------------------------------------------------------------------


def manifest_thresholds(
    jurisdiction: Mapping[int, Sequence[str] | set[str] | frozenset[str]],
    thresholds: Mapping[str, float] | None,
    default: float = DEFAULT_THRESHOLD,
) -> dict[int, float]:
    """Per manifest index: the LOWEST threshold among the members with jurisdiction over the flight.

    The router then hands each member the model reason only when it reaches that member's own threshold
    (services.router.recipients.review_threshold_tailor). A flight over which no member has jurisdiction
    gets no model reason (nobody would review it): infinity.
    """
    thresholds = thresholds or {}
    return {
        m: min((thresholds.get(member, default) for member in members), default=math.inf)
        for m, members in jurisdiction.items()
    }


def review_candidates(
    model: ModelArtifact, features: pl.DataFrame, threshold_by_manifest: Mapping[int, float]
) -> pl.DataFrame:
    """Rows (manifest_index, traveller_index, probability, threshold, explanation) whose probability reaches
    their flight's threshold.

    One predict_proba over the whole batch; explanations only for the (few) rows that reach it.
    """
    probabilities = model.score(features)
    m = features["manifest_index"].to_numpy()
    table = np.full(int(m.max()) + 1 if len(m) else 0, math.inf)
    for i, value in threshold_by_manifest.items():
        if 0 <= i < len(table):
            table[i] = value
    limit = table[m]
    chosen = np.flatnonzero(probabilities >= limit)
    rows = features[chosen] if len(chosen) else features.clear()
    explanations = [", ".join(str(c) for c in row) for row in model.explain(rows)]
    return pl.DataFrame(
        {
            "manifest_index": rows["manifest_index"],
            "traveller_index": rows["traveller_index"],
            "probability": probabilities[chosen],
            "threshold": limit[chosen],
            "explanation": pl.Series(explanations, dtype=pl.String()),
        }
    )

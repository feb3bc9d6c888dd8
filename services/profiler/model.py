"""The risk model: a frozen, explainable logistic regression that ranks travellers for human review.

What it is
* A scikit-learn Pipeline (median imputation -> standardisation -> LogisticRegression) over MODEL_FEATURES:
  behavioural and document features only, each computed by one polars expression from the columns that
  services.profiler.frames.add_features derives. No nationality, residence, issuing state, sex, age, name
  or route feature (reference/name-matching.md §6); even "nationality differs from the issuing state" is
  left out, because it is a function of nationality.
* Trained offline on the labelled synthetic history (services.profiler.history), optionally with members'
  dispositions as extra labels (services.profiler.labels; see "Disposition labels" below), evaluated on a
  held-out split (ROC AUC, precision at the top 1 %), and written as a versioned artefact: a directory holding
  `pipeline.joblib` and `metadata.json` (version, creation time, feature list, the code's feature-schema
  hash, training rows, evaluation, published coefficients, scikit-learn version, the pipeline's SHA-256).
  The shipped pipeline is the evaluated one (no refit on the held-out rows), so the figures describe it.
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

Disposition labels: rows built from members' dispositions (labels.py) are few and biased (only travellers
that something already flagged get one), so they never replace the synthetic history: they join its
training split with a sample weight (DEFAULT_LABEL_WEIGHT per row, lowered so that they carry at most
MAX_LABEL_WEIGHT_SHARE of the total weight). With at least MIN_LABELS_FOR_EVALUATION of them, a held-out
part is kept out of training and the model is evaluated on it, beside a model trained on the synthetic
history alone; with fewer, the metadata says they were not evaluated. The metadata's "dispositions" section
records how many were used, their positive share, the weighting and that evaluation; counts only.

The artefact is a pickle (joblib): load only artefacts your hub trained (the configured model_path),
never one received from elsewhere; the checksum catches corruption and a swapped file, not an attacker
who rewrites both files.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import polars as pl
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from services.config import DEFAULT_LABEL_WEIGHT, DEFAULT_MODEL_THRESHOLD, MAX_LABEL_WEIGHT_SHARE
from services.profiler.history import CASH, history

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
# The share of the held-out split on which "precision at the top" is measured.
TOP_SHARE = 0.01
# Disposition labels (see the module docstring; their weights are in services.config): how many it takes to hold
# some out for an evaluation.
MIN_LABELS_FOR_EVALUATION = 50
LABEL_NOTE = (
    "Members' dispositions exist only for hits (travellers a rule, watchlist entry or model already flagged): "
    "few rows, not a sample of all travellers. They are added to the synthetic history's training split with a "
    "sample weight, never used alone."
)


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _precision_at_top(labels: np.ndarray, scores: np.ndarray, share: float) -> float:
    k = max(1, math.ceil(len(scores) * share))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean())


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


def _version(created: datetime, digest: str) -> str:
    return f"{MODEL_NAME}-{created:%Y%m%dT%H%M%SZ}-{digest[:8]}"


def build_pipeline(seed: int = 0) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=1.0, max_iter=1000, random_state=seed)),
        ]
    )


def effective_label_weight(
    requested: float, label_rows: int, synthetic_rows: int, max_share: float = MAX_LABEL_WEIGHT_SHARE
) -> float:
    """Per-row weight of disposition rows: the requested one, lowered so that all of them together carry at
    most `max_share` of the training weight (each synthetic row weighs 1)."""
    if label_rows <= 0:
        return float(requested)
    return float(min(requested, max_share / (1.0 - max_share) * synthetic_rows / label_rows))


def _labels_of(labels: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = sorted(set(INPUT_COLUMNS | {"of_interest"}) - set(labels.columns))
    if missing:
        raise ValueError(f"disposition labels lack columns {missing}")
    if labels["of_interest"].null_count():
        raise ValueError("disposition labels: some rows have no of_interest label")
    return feature_matrix(labels), labels["of_interest"].to_numpy().astype(np.int8)


def _label_split(y: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices of the disposition labels; nothing held out below the minimum."""
    rows = np.arange(len(y))
    if len(y) < MIN_LABELS_FOR_EVALUATION:
        return rows, rows[:0]
    # Stratified when each class can give a row to both parts, so the held-out part keeps the positive share.
    stratify = y if min(int(y.sum()), int(len(y) - y.sum())) >= 2 and len(y) * holdout >= 2 else None
    train_rows, test_rows = train_test_split(rows, test_size=holdout, random_state=seed, stratify=stratify)
    return np.sort(train_rows), np.sort(test_rows)


def _label_evaluation(y: np.ndarray, scores: np.ndarray, synthetic_only: np.ndarray, labels: int) -> dict[str, Any]:
    if len(y) == 0:
        return {
            "evaluated": False,
            "reason": f"{labels} disposition labels, fewer than the {MIN_LABELS_FOR_EVALUATION} needed to hold "
            "some out; all were used for training",
        }
    both = 0 < y.sum() < len(y)
    flagged = scores >= DEFAULT_THRESHOLD
    positives = int(y.sum())
    return {
        "evaluated": True,
        "holdout_rows": len(y),
        "holdout_positives": positives,
        "roc_auc": round(float(roc_auc_score(y, scores)), 4) if both else None,
        # The same rows scored by a model trained on the synthetic history alone: did the labels help?
        "synthetic_only_roc_auc": round(float(roc_auc_score(y, synthetic_only)), 4) if both else None,
        "default_threshold": DEFAULT_THRESHOLD,
        "review_share_at_default_threshold": round(float(flagged.mean()), 6),
        "precision_at_default_threshold": round(float(y[flagged].mean()), 4) if flagged.any() else None,
        "recall_at_default_threshold": round(float(y[flagged].sum() / positives), 4) if positives else None,
    }


def train(
    out_dir: Path,
    *,
    rows: int = 200_000,
    seed: int = 7,
    holdout: float = 0.25,
    data: pl.DataFrame | None = None,
    now: datetime | None = None,
    labels: pl.DataFrame | None = None,
    label_weight: float = DEFAULT_LABEL_WEIGHT,
    label_source: str | None = None,
    label_collection: Mapping[str, Any] | None = None,
) -> ModelArtifact:
    """Train on the synthetic history (or `data`, HISTORY_SCHEMA columns) and write out_dir/<version>/.

    `labels`: rows from members' dispositions (services.profiler.labels.LABEL_SCHEMA, or at least the model's
    input columns and of_interest), added to the training split with weight `label_weight` per row (capped,
    see effective_label_weight) and evaluated on a held-out part when there are enough. `label_source` (where
    they came from) and `label_collection` (counts of the labelling run) are recorded in the metadata as given:
    pass no personal data. Returns the artefact with `path` set to the version directory.
    """
    if label_weight <= 0:
        raise ValueError("label_weight must be positive")
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    frame = data if data is not None else history(rows, seed)
    x = feature_matrix(frame)
    y = frame["of_interest"].to_numpy().astype(np.int8)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y)
    labels = labels if labels is not None and not labels.is_empty() else None
    if labels is None:
        pipeline = build_pipeline(seed).fit(x_train, y_train)
        dispositions: dict[str, Any] = {
            "labels": 0,
            "source": label_source,
            "note": "not used: trained on the synthetic history only"
            if label_source is None
            else "none found: trained on the synthetic history only",
        }
    else:
        x_labels, y_labels = _labels_of(labels)
        fit_rows, held_rows = _label_split(y_labels, holdout, seed)
        weight = effective_label_weight(label_weight, len(fit_rows), len(y_train))
        pipeline = build_pipeline(seed).fit(
            np.vstack([x_train, x_labels[fit_rows]]),
            np.concatenate([y_train, y_labels[fit_rows]]),
            classify__sample_weight=np.concatenate([np.ones(len(y_train)), np.full(len(fit_rows), weight)]),
        )
        held_scores = synthetic_only = np.zeros(0)
        if len(held_rows):
            held_scores = pipeline.predict_proba(x_labels[held_rows])[:, 1]
            synthetic_only = build_pipeline(seed).fit(x_train, y_train).predict_proba(x_labels[held_rows])[:, 1]
        total_label_weight = weight * len(fit_rows)
        dispositions = {
            "labels": len(y_labels),
            "positives": int(y_labels.sum()),
            "positive_share": round(float(y_labels.mean()), 4),
            "train_rows": len(fit_rows),
            "source": label_source,
            "weighting": {
                "requested_per_row": float(label_weight),
                "per_row": round(weight, 6),
                "max_share": MAX_LABEL_WEIGHT_SHARE,
                "share_of_training_weight": round(total_label_weight / (total_label_weight + len(y_train)), 6),
            },
            "evaluation": _label_evaluation(y_labels[held_rows], held_scores, synthetic_only, len(y_labels)),
            "note": LABEL_NOTE,
        }
        if "sources" in labels.columns:
            counts = labels.group_by("sources").len().sort("sources").iter_rows()
            dispositions["raised_by"] = {str(source): int(n) for source, n in counts}
    if label_collection is not None:
        dispositions["collection"] = dict(label_collection)
    scores = pipeline.predict_proba(x_test)[:, 1]
    flagged = scores >= DEFAULT_THRESHOLD
    evaluation = {
        "holdout_rows": len(y_test),
        "holdout_positives": int(y_test.sum()),
        "base_rate": round(float(y_test.mean()), 6),
        "roc_auc": round(float(roc_auc_score(y_test, scores)), 4),
        "top_share": TOP_SHARE,
        "precision_at_top_1pct": round(_precision_at_top(y_test, scores, TOP_SHARE), 4),
        "default_threshold": DEFAULT_THRESHOLD,
        "review_share_at_default_threshold": round(float(flagged.mean()), 6),
        "precision_at_default_threshold": round(float(y_test[flagged].mean()), 4) if flagged.any() else None,
    }
    classifier = pipeline[-1]
    out_dir = Path(out_dir)
    staging = out_dir / f".staging-{created:%Y%m%dT%H%M%SZ}"
    staging.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, staging / PIPELINE_FILE)
    digest = _sha256(staging / PIPELINE_FILE)
    version = _version(created, digest)
    metadata = {
        "format": ARTIFACT_FORMAT,
        "name": MODEL_NAME,
        "version": version,
        "created": created.isoformat(),
        "features": list(FEATURE_NAMES),
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_schema_hash": feature_schema_hash(),
        "estimator": "SimpleImputer(median) + StandardScaler + LogisticRegression",
        "training": {
            "source": ("services.profiler.history" if data is None else "caller data")
            + (" + member dispositions" if labels is not None else ""),
            "rows": frame.height,
            "train_rows": len(y_train),
            "positives": int(y.sum()),
            "seed": seed,
        },
        "evaluation": evaluation,
        "dispositions": dispositions,
        # Published, as OpenSanctions does for regression-v1: log-odds per standard deviation of each feature.
        "coefficients": {n: round(float(c), 6) for n, c in zip(FEATURE_NAMES, classifier.coef_[0], strict=True)},
        "intercept": round(float(classifier.intercept_[0]), 6),
        "sklearn_version": sklearn.__version__,
        "pipeline_file": PIPELINE_FILE,
        "pipeline_sha256": digest,
    }
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    target = out_dir / version
    if target.exists():  # same second, same pipeline bytes: this very artefact was just written
        shutil.rmtree(staging)
    else:
        staging.rename(target)
    return ModelArtifact(pipeline, metadata, target)


def read_metadata(path: Path) -> dict[str, Any]:
    """metadata.json of an artefact directory (or the file itself), without loading the pipeline."""
    path = Path(path)
    meta_path = path / METADATA_FILE if path.is_dir() else path
    try:
        return json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ModelArtifactError(f"model artefact {path}: no {METADATA_FILE}") from None
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(f"model artefact {path}: {METADATA_FILE} is not JSON ({exc})") from None


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
    if _sha256(pipeline_path) != metadata.get("pipeline_sha256"):
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
    """Rows (m, t, probability, threshold, explanation) whose probability reaches their flight's threshold.

    One predict_proba over the whole batch; explanations only for the (few) rows that reach it.
    """
    probabilities = model.score(features)
    m = features["m"].to_numpy()
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
            "m": rows["m"],
            "t": rows["t"],
            "probability": probabilities[chosen],
            "threshold": limit[chosen],
            "explanation": pl.Series(explanations, dtype=pl.String()),
        }
    )

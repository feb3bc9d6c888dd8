"""Training the risk model (services.profiler.model): fit, evaluate on a held-out split, write the artefact.

What the profiler runs (loading, scoring, explaining) is services.profiler.model; this module is what `apihub model
train` runs, and it imports no generator: the caller hands it the rows to learn from. `apihub model train` generates
the labelled synthetic history (synthetic.history, in a source checkout), so a model is trained there and its
artefact directory copied to where a hub's APIHUB_MODEL_PATH points.

train() fits the pipeline on a training split of `data`, evaluates it on the held-out rows (ROC AUC, precision
at the top 1 %) and writes a versioned artefact: a directory holding `pipeline.joblib` and `metadata.json`
(version, creation time, feature list, the code's feature-schema hash, training rows, evaluation, published
coefficients, scikit-learn version, the pipeline's SHA-256). The shipped pipeline is the evaluated one (no refit
on the held-out rows), so the figures describe it.

Disposition labels: rows built from members' dispositions (labels.py) are few and biased (only travellers
that something already flagged get one), so they never replace the synthetic history: they join its
training split with a sample weight (DEFAULT_LABEL_WEIGHT per row, lowered so that they carry at most
MAX_LABEL_WEIGHT_SHARE of the total weight). With at least MIN_LABELS_FOR_EVALUATION of them, a held-out
part is kept out of training and the model is evaluated on it, beside a model trained on the synthetic
history alone; with fewer, the metadata says they were not evaluated. The metadata's "dispositions" section
records how many were used, their positive share, the weighting and that evaluation; counts only.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
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

from services.config import DEFAULT_LABEL_WEIGHT, MAX_LABEL_WEIGHT_SHARE
from services.profiler.model import (
    ARTIFACT_FORMAT,
    DEFAULT_THRESHOLD,
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    INPUT_COLUMNS,
    METADATA_FILE,
    MODEL_NAME,
    PIPELINE_FILE,
    ModelArtifact,
    feature_matrix,
    feature_schema_hash,
    file_sha256,
)

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


def _precision_at_top(labels: np.ndarray, scores: np.ndarray, share: float) -> float:
    k = max(1, math.ceil(len(scores) * share))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean())


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


@dataclass(frozen=True)
class _Split:
    """The rows to learn from, split into the part the pipeline is fitted on and the part it is evaluated on."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def _fit_with_labels(
    split: _Split,
    labels: pl.DataFrame,
    *,
    seed: int,
    holdout: float,
    label_weight: float,
    label_source: str | None,
) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline fitted on the training split plus the disposition labels (weighted), and the metadata's
    "dispositions" section (counts, weighting, the evaluation on the held-out labels)."""
    x_labels, y_labels = _labels_of(labels)
    fit_rows, held_rows = _label_split(y_labels, holdout, seed)
    weight = effective_label_weight(label_weight, len(fit_rows), len(split.y_train))
    pipeline = build_pipeline(seed).fit(
        np.vstack([split.x_train, x_labels[fit_rows]]),
        np.concatenate([split.y_train, y_labels[fit_rows]]),
        classify__sample_weight=np.concatenate([np.ones(len(split.y_train)), np.full(len(fit_rows), weight)]),
    )
    held_scores = synthetic_only = np.zeros(0)
    if len(held_rows):
        held_scores = pipeline.predict_proba(x_labels[held_rows])[:, 1]
        alone = build_pipeline(seed).fit(split.x_train, split.y_train)
        synthetic_only = alone.predict_proba(x_labels[held_rows])[:, 1]
    total_label_weight = weight * len(fit_rows)
    dispositions: dict[str, Any] = {
        "labels": len(y_labels),
        "positives": int(y_labels.sum()),
        "positive_share": round(float(y_labels.mean()), 4),
        "train_rows": len(fit_rows),
        "source": label_source,
        "weighting": {
            "requested_per_row": float(label_weight),
            "per_row": round(weight, 6),
            "max_share": MAX_LABEL_WEIGHT_SHARE,
            "share_of_training_weight": round(total_label_weight / (total_label_weight + len(split.y_train)), 6),
        },
        "evaluation": _label_evaluation(y_labels[held_rows], held_scores, synthetic_only, len(y_labels)),
        "note": LABEL_NOTE,
    }
    if "sources" in labels.columns:
        counts = labels.group_by("sources").len().sort("sources").iter_rows()
        dispositions["raised_by"] = {str(source): int(n) for source, n in counts}
    return pipeline, dispositions


def _holdout_evaluation(pipeline: Pipeline, split: _Split) -> dict[str, Any]:
    """The metadata's "evaluation" section: the fitted pipeline on the held-out rows of the training data."""
    y_test = split.y_test
    scores = pipeline.predict_proba(split.x_test)[:, 1]
    flagged = scores >= DEFAULT_THRESHOLD
    return {
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


def _write_artefact(out_dir: Path, created: datetime, pipeline: Pipeline, metadata: dict[str, Any]) -> ModelArtifact:
    """Write pipeline.joblib and metadata.json (completed with the version and checksum) under out_dir/<version>/:
    staged beside it first, so a half-written artefact never carries a version name."""
    out_dir = Path(out_dir)
    staging = out_dir / f".staging-{created:%Y%m%dT%H%M%SZ}"
    staging.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, staging / PIPELINE_FILE)
    digest = file_sha256(staging / PIPELINE_FILE)
    version = _version(created, digest)
    metadata = {
        "format": ARTIFACT_FORMAT,
        "name": MODEL_NAME,
        "version": version,
        "created": created.isoformat(),
        **metadata,
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


def train(
    out_dir: Path,
    data: pl.DataFrame,
    *,
    source: str = "caller data",
    seed: int = 7,
    holdout: float = 0.25,
    now: datetime | None = None,
    labels: pl.DataFrame | None = None,
    label_weight: float = DEFAULT_LABEL_WEIGHT,
    label_source: str | None = None,
    label_collection: Mapping[str, Any] | None = None,
) -> ModelArtifact:
    """Train on `data` (the model's FEATURE_COLUMNS and an `of_interest` label, such as the synthetic history
    of synthetic.history) and write out_dir/<version>/.

    `source` names where `data` came from in the metadata. `labels`: rows from members' dispositions
    (services.profiler.labels.LABEL_SCHEMA, or at least the model's input columns and of_interest), added to the
    training split with weight `label_weight` per row (capped, see effective_label_weight) and evaluated on a
    held-out part when there are enough. `label_source` (where they came from) and `label_collection` (counts of
    the labelling run) are recorded in the metadata as given: pass no personal data. Returns the artefact with
    `path` set to the version directory.
    """
    if label_weight <= 0:
        raise ValueError("label_weight must be positive")
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    x = feature_matrix(data)
    y = data["of_interest"].to_numpy().astype(np.int8)
    split = _Split(*train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y))
    labels = labels if labels is not None and not labels.is_empty() else None
    if labels is None:
        pipeline = build_pipeline(seed).fit(split.x_train, split.y_train)
        dispositions: dict[str, Any] = {
            "labels": 0,
            "source": label_source,
            "note": "not used: trained on the synthetic history only"
            if label_source is None
            else "none found: trained on the synthetic history only",
        }
    else:
        pipeline, dispositions = _fit_with_labels(
            split, labels, seed=seed, holdout=holdout, label_weight=label_weight, label_source=label_source
        )
    if label_collection is not None:
        dispositions["collection"] = dict(label_collection)
    classifier = pipeline[-1]
    metadata = {
        "features": list(FEATURE_NAMES),
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_schema_hash": feature_schema_hash(),
        "estimator": "SimpleImputer(median) + StandardScaler + LogisticRegression",
        "training": {
            "source": source + (" + member dispositions" if labels is not None else ""),
            "rows": data.height,
            "train_rows": len(split.y_train),
            "positives": int(y.sum()),
            "seed": seed,
        },
        "evaluation": _holdout_evaluation(pipeline, split),
        "dispositions": dispositions,
        # Published, as OpenSanctions does for regression-v1: log-odds per standard deviation of each feature.
        "coefficients": {n: round(float(c), 6) for n, c in zip(FEATURE_NAMES, classifier.coef_[0], strict=True)},
        "intercept": round(float(classifier.intercept_[0]), 6),
        "sklearn_version": sklearn.__version__,
    }
    return _write_artefact(out_dir, created, pipeline, metadata)

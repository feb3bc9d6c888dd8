import json
from datetime import UTC, datetime

import pytest

from services.directory import load_directory
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.model import (
    DEFAULT_THRESHOLD,
    FEATURE_COLUMNS,
    FEATURE_NAMES,
    INPUT_COLUMNS,
    METADATA_FILE,
    PIPELINE_FILE,
    ModelArtifactError,
    load_model,
    manifest_thresholds,
)
from services.profiler.scoring import MODEL_ONLY_CAP, combined_score, hit_score, score_batch
from services.profiler.watchlist import WatchlistStore
from services.wire import hit_pb2, manifest_pb2
from synthetic.history import train_on_history

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DEPARTURE = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)  # 19:00 on 1 March in Nadi
DIRECTORY = load_directory()
EMPTY = WatchlistStore()
# Attributes that must never reach the model, as column names or name parts (also in tests/synthetic/test_history.py:
# kept here, not imported from the code under test, so weakening the code's own list cannot pass these tests).
PROTECTED = {
    "nationality", "nationality_differs", "residence", "issuing", "issuer", "sex", "gender", "name", "surname",
    "given", "dob", "birth", "age", "ethnicity", "ethnic", "religion", "country", "origin", "destination", "ports",
}  # fmt: skip


def _tokens(name: str) -> set[str]:
    return set(name.lower().split("_")) | {name.lower()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # Small and seeded: about a third of a second.
    return train_on_history(tmp_path_factory.mktemp("models"), rows=30_000, seed=1)


def _date(y, m, d):
    return manifest_pb2.PartialDate(year=y, month=m, day=d)


def _traveller(surname, locator, booked, payment, one_way, expiry=(2031, 1, 1), number="TP0012345"):
    t = manifest_pb2.Traveller(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=surname,
        given_names="Sione",
        date_of_birth=_date(1975, 1, 1),
        nationality="TON",
        reservation_locator=locator,
        booking=manifest_pb2.Booking(booking_date=_date(*booked), payment_form=payment, one_way=one_way),
    )
    t.documents.add(type=manifest_pb2.DOCUMENT_TYPE_PASSPORT, number=number, issuing_state="TON", expiry=_date(*expiry))
    return t


def _risky(**kw):
    # Booked the day before, cash, one-way, alone under the locator: the LASTMIN_CASH_ONEWAY pattern.
    return _traveller("Fifita", "RISKY1", (2026, 2, 28), "CA", True, number="XK7654321", **kw)


def _benign():
    return _traveller("Tupou", "CALM01", (2025, 12, 1), "CC", False)


def _manifest(*travellers, origin="NAN", destination="TBU"):
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id="m-model", function=1)
    manifest.travellers.extend(travellers)
    manifest.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(DEPARTURE)
    manifest.received_at.FromDatetime(datetime(2026, 3, 1, 1, 0, tzinfo=UTC))
    return manifest


def _probabilities(model, manifest):
    return model.score(add_features(manifests_to_frame([manifest]), [manifest]))


def _model_reasons(hit):
    return [r for r in hit.reasons if r.source == hit_pb2.REASON_SOURCE_MODEL]


# -- features ----------------------------------------------------------------------------------------------


def test_features_exclude_protected_attributes():
    for name in FEATURE_NAMES:
        assert not _tokens(name) & PROTECTED, name
    # ... and so do the columns they are computed from (a feature named innocently cannot read nationality).
    for column in INPUT_COLUMNS:
        assert not _tokens(column) & PROTECTED, column


def test_the_training_columns_are_the_ones_the_features_read():
    """FEATURE_COLUMNS (what a training row holds: the synthetic history, disposition labels) names exactly the
    add_features columns the features are computed from, with add_features' dtypes."""
    assert set(FEATURE_COLUMNS) == INPUT_COLUMNS
    manifest = manifest_pb2.Manifest(carrier="FJ", flight_number="411")
    manifest.legs.add(origin="NAN", destination="SYD").scheduled_departure.FromDatetime(DEPARTURE)
    manifest.travellers.add(role=manifest_pb2.TRAVELLER_ROLE_PASSENGER, surname="TAVOLA")
    features = add_features(manifests_to_frame([manifest]), [manifest])
    assert {name: features.schema[name] for name in FEATURE_COLUMNS} == FEATURE_COLUMNS


# -- training and the artefact -----------------------------------------------------------------------------


def test_training_ranks_well_above_chance_and_records_the_evaluation(model):
    evaluation = model.metadata["evaluation"]
    assert evaluation["roc_auc"] >= 0.75
    assert evaluation["precision_at_top_1pct"] > 10 * evaluation["base_rate"]
    written = json.loads((model.path / METADATA_FILE).read_text())
    assert written["evaluation"] == evaluation
    assert written["features"] == list(FEATURE_NAMES)
    assert written["training"]["rows"] == 30_000
    assert written["version"] == model.version and model.path.name == model.version


def test_a_saved_model_loads_and_scores_the_same(model):
    loaded = load_model(model.path)
    manifest = _manifest(_risky(), _benign())
    assert loaded.version == model.version
    assert list(_probabilities(loaded, manifest)) == list(_probabilities(model, manifest))


def _copy(model, tmp_path):
    target = tmp_path / model.version
    target.mkdir()
    for name in (METADATA_FILE, PIPELINE_FILE):
        (target / name).write_bytes((model.path / name).read_bytes())
    return target


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda meta: meta.update(features=meta["features"][:-1]), "other features"),
        (lambda meta: meta.update(features=[*meta["features"], "nationality"]), "other features"),
        (lambda meta: meta.update(feature_schema_hash="0" * 64), "feature definitions changed"),
        (lambda meta: meta.update(pipeline_sha256="0" * 64), "SHA-256"),
        (lambda meta: meta.update(sklearn_version="0.1"), "scikit-learn"),
    ],
)
def test_load_refuses_an_artefact_that_does_not_match_the_code(model, tmp_path, tamper, message):
    target = _copy(model, tmp_path)
    meta = json.loads((target / METADATA_FILE).read_text())
    tamper(meta)
    (target / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelArtifactError, match=message):
        load_model(target)


def test_load_refuses_a_missing_artefact(tmp_path):
    with pytest.raises(ModelArtifactError, match="no metadata.json"):
        load_model(tmp_path)


# -- explanations ------------------------------------------------------------------------------------------


def test_model_ranks_the_planted_pattern_above_an_ordinary_booking(model):
    risky, benign = _probabilities(model, _manifest(_risky(), _benign()))
    assert risky > 10 * benign


def test_explanations_name_features_in_plain_words_and_quote_no_personal_value(model):
    manifest = _manifest(_risky(), _benign())
    features = add_features(manifests_to_frame([manifest]), [manifest])
    explained = model.explain(features)
    assert [len(row) for row in explained] == [3, 3]
    assert {c.feature for c in explained[0]} <= set(FEATURE_NAMES)
    text = "; ".join(str(c) for c in explained[0])
    assert "last-minute cash booking (+" in text
    hits = score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.05, "TON": 0.05})
    [reason] = _model_reasons(hits[0])
    for personal in ("Fifita", "FIFITA", "Sione", "XK7654321", "RISKY1", "2026-02-28", "1975"):
        assert personal not in reason.explanation
    assert "last-minute cash booking" in reason.explanation


# -- scoring -----------------------------------------------------------------------------------------------


def test_model_reason_only_at_or_above_the_threshold(model):
    manifest = _manifest(_risky(), _benign())
    risky, benign = _probabilities(model, manifest)
    below = score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.999, "TON": 0.999})
    assert below == []
    at = float(risky)
    hits = score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": at, "TON": at})
    assert [h.traveller.surname for h in hits] == ["Fifita"]
    [reason] = _model_reasons(hits[0])
    assert reason.id == model.version
    assert reason.category == "review"
    assert reason.score == pytest.approx(risky)
    assert benign < at


def test_lowest_threshold_among_members_with_jurisdiction_applies(model):
    manifest = _manifest(_risky(), _benign())  # NAN -> TBU: FJI and TON
    risky, _ = _probabilities(model, manifest)
    low = float(risky) - 0.01
    assert score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.999, "TON": low})
    # A member without jurisdiction over the flight does not lower its threshold.
    assert not score_batch(
        [manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.999, "TON": 0.999, "WSM": 0.0}
    )
    assert manifest_thresholds({0: {"FJI", "TON"}, 1: set()}, {"TON": 0.2}) == {0: 0.2, 1: float("inf")}
    assert manifest_thresholds({0: {"FJI"}}, None)[0] == DEFAULT_THRESHOLD


def test_a_model_only_hit_is_capped(model):
    manifest = _manifest(_risky())
    [hit] = score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.0, "TON": 0.0})
    [reason] = hit.reasons
    assert reason.source == hit_pb2.REASON_SOURCE_MODEL
    assert hit.score == pytest.approx(min(MODEL_ONLY_CAP, reason.score))
    assert hit_score([hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_MODEL, score=0.97)]) == MODEL_ONLY_CAP


def test_with_other_reasons_the_model_is_evidence_and_does_not_raise_the_score(model):
    # An expired document: the hub rule HUB-DOC-EXPIRED fires too.
    manifest = _manifest(_risky(expiry=(2026, 2, 1)))
    [plain] = score_batch([manifest], EMPTY, DIRECTORY, NOW)
    [hit] = score_batch([manifest], EMPTY, DIRECTORY, NOW, model=model, thresholds={"FJI": 0.0, "TON": 0.0})
    assert {r.source for r in hit.reasons} == {hit_pb2.REASON_SOURCE_RULE, hit_pb2.REASON_SOURCE_MODEL}
    assert hit.score == plain.score == combined_score([r.score for r in plain.reasons])
    rule = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_RULE, score=0.3)
    model_reason = hit_pb2.Reason(source=hit_pb2.REASON_SOURCE_MODEL, score=0.9)
    assert hit_score([rule, model_reason]) == pytest.approx(0.3)


def test_score_batch_without_a_model_is_unchanged(model):
    manifests = [
        _manifest(_risky(expiry=(2026, 2, 1)), _benign()),
        _manifest(_risky(), origin="APW", destination="AKL"),
    ]
    before = score_batch(manifests, EMPTY, DIRECTORY, NOW)
    assert score_batch(manifests, EMPTY, DIRECTORY, NOW, model=None) == before
    # A model whose thresholds nobody reaches changes nothing either.
    unreached = {code: 1.01 for code in DIRECTORY.members}
    assert score_batch(manifests, EMPTY, DIRECTORY, NOW, model=model, thresholds=unreached) == before
    assert all(r.source != hit_pb2.REASON_SOURCE_MODEL for h in before for r in h.reasons)


# -- command line ------------------------------------------------------------------------------------------


def test_cli_trains_shows_and_refuses(tmp_path):
    from typer.testing import CliRunner

    from services.profiler.model_cli import model_app

    runner = CliRunner()
    trained = runner.invoke(model_app, ["train", "--out", str(tmp_path), "--rows", "5000", "--seed", "3"])
    assert trained.exit_code == 0, trained.output
    assert "ROC AUC" in trained.output and "precision at the top 1 %" in trained.output
    [artefact] = [p for p in tmp_path.iterdir() if p.name.startswith("risk-")]
    shown = runner.invoke(model_app, ["show", str(artefact)])
    assert shown.exit_code == 0, shown.output
    assert "accepted by this code" in shown.output and "last_minute_cash" in shown.output
    meta = json.loads((artefact / METADATA_FILE).read_text())
    meta["features"] = meta["features"][1:]
    (artefact / METADATA_FILE).write_text(json.dumps(meta))
    refused = runner.invoke(model_app, ["show", str(artefact)])
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output

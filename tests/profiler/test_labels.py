"""Dispositions as model labels: outcome mapping, latest per member, members disagreeing, the hit's features
recomputed from its manifest (as the profiler computes them), skipped hits, files, and training with them."""

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from services import codec
from services.dispositions import latest_per_member
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.labels import (
    LABEL_SCHEMA,
    LabelFileError,
    LabelReport,
    build_labels,
    choose_versions,
    hit_labels,
    label_rows,
    outcome_label,
    read_labels_file,
    write_labels_file,
)
from services.profiler.model import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA_VERSION,
    feature_matrix,
    feature_schema_hash,
    load_model,
)
from services.profiler.training import MIN_LABELS_FOR_EVALUATION, effective_label_weight
from services.wire import delivery_pb2, hit_pb2, manifest_pb2
from synthetic.history import history, train_on_history

OUT = delivery_pb2
DEPARTURE = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)


def _d(hit_id, member, outcome, at=1):
    d = delivery_pb2.Disposition(hit_id=hit_id, member=member, outcome=outcome, reason_keys=["rule:FJI:R1"])
    d.at.seconds = at
    return d


def _date(y, m, d):
    return manifest_pb2.PartialDate(year=y, month=m, day=d)


def _traveller(ref, surname, locator="", booked=None, payment="", one_way=None, number="TP0012345"):
    t = manifest_pb2.Traveller(
        role=manifest_pb2.TRAVELLER_ROLE_PASSENGER,
        surname=surname,
        given_names="Sione",
        date_of_birth=_date(1975, 1, 1),
        nationality="TON",
        passenger_ref=ref,
        reservation_locator=locator,
    )
    if booked is not None:
        t.booking.booking_date.CopyFrom(_date(*booked))
        t.booking.payment_form = payment
        if one_way is not None:
            t.booking.one_way = one_way
    t.documents.add(
        type=manifest_pb2.DOCUMENT_TYPE_PASSPORT, number=number, issuing_state="TON", expiry=_date(2031, 1, 1)
    )
    return t


def _manifest(manifest_id, *travellers, route=("NAN", "APW", "TBU")):
    m = manifest_pb2.Manifest(carrier="FJ", flight_number="911", manifest_id=manifest_id, function=1)
    m.travellers.extend(travellers)
    for origin, destination in zip(route, route[1:], strict=False):
        m.legs.add(origin=origin, destination=destination).scheduled_departure.FromDatetime(DEPARTURE)
    return m


def _hit(manifest, t, raised=1, source=hit_pb2.REASON_SOURCE_WATCHLIST):
    traveller = manifest.travellers[t]
    hit = hit_pb2.Hit(
        hit_id=codec.hit_id(codec.flight_key(manifest), codec.traveller_key(traveller)),
        manifest_id=manifest.manifest_id,
        traveller=traveller,
        state=hit_pb2.HIT_STATE_ACTIVE,
    )
    hit.flight.CopyFrom(codec.flight_ref(manifest))
    hit.reasons.add(source=source, id="E1", score=1.0)
    hit.raised_at.seconds = raised
    return hit


# -- outcomes and members ------------------------------------------------------------------------------------


def test_every_outcome_but_unspecified_gives_a_label_and_the_mapping_is_the_documented_one():
    assert {name: outcome_label(value) for name, value in OUT.Outcome.items()} == {
        "OUTCOME_UNSPECIFIED": None,
        "OUTCOME_TRUE_MATCH": True,
        "OUTCOME_DENIED_BOARDING": True,
        "OUTCOME_REFUSED_ENTRY": True,
        "OUTCOME_SECONDARY_POSITIVE": True,
        "OUTCOME_FALSE_POSITIVE": False,
        "OUTCOME_SECONDARY_NEGATIVE": False,
    }


def test_only_a_members_latest_disposition_counts_by_time_not_by_read_order():
    # FJI revised its outcome: the revision (at=5) is read before the first one (at=2) and still wins.
    read = [_d("h1", "FJI", OUT.OUTCOME_FALSE_POSITIVE, at=5), _d("h1", "FJI", OUT.OUTCOME_TRUE_MATCH, at=2)]
    assert latest_per_member(read)[("h1", "FJI")].outcome == OUT.OUTCOME_FALSE_POSITIVE
    report = LabelReport()
    [label] = hit_labels(read, report).values()
    assert (label.of_interest, label.outcome, label.members, label.conflicting) == (
        False,
        OUT.OUTCOME_FALSE_POSITIVE,
        1,
        False,
    )
    assert (report.dispositions, report.superseded, report.disposed_hits) == (2, 1, 1)
    # Same time: the one read last wins.
    tie = [_d("h1", "FJI", OUT.OUTCOME_FALSE_POSITIVE, at=3), _d("h1", "FJI", OUT.OUTCOME_DENIED_BOARDING, at=3)]
    assert hit_labels(tie)["h1"].of_interest is True


def test_members_that_disagree_any_positive_wins_and_the_hit_is_counted_as_conflicting():
    report = LabelReport()
    labels = hit_labels(
        [
            _d("h1", "FJI", OUT.OUTCOME_FALSE_POSITIVE, at=1),
            _d("h1", "WSM", OUT.OUTCOME_REFUSED_ENTRY, at=2),
            _d("h1", "TON", OUT.OUTCOME_SECONDARY_NEGATIVE, at=3),
            _d("h2", "FJI", OUT.OUTCOME_FALSE_POSITIVE, at=1),
            _d("h2", "WSM", OUT.OUTCOME_SECONDARY_NEGATIVE, at=2),
        ],
        report,
    )
    h1, h2 = labels["h1"], labels["h2"]
    assert (h1.of_interest, h1.outcome, h1.positive_members, h1.negative_members, h1.conflicting) == (
        True,
        OUT.OUTCOME_REFUSED_ENTRY,
        1,
        2,
        True,
    )
    assert h1.at == (2, 0)  # decided by the positive disposition, not by the later negative one
    assert (h2.of_interest, h2.members, h2.conflicting, h2.at) == (False, 2, False, (2, 0))
    assert (report.disposed_hits, report.conflicting) == (2, 1)


def test_a_latest_outcome_without_a_label_gives_none_and_is_counted():
    report = LabelReport()
    assert hit_labels([_d("h1", "FJI", OUT.OUTCOME_UNSPECIFIED)], report) == {}
    assert (report.unlabelled, report.disposed_hits) == (1, 0)


# -- features --------------------------------------------------------------------------------------------------


def _flight():
    # Two travellers share a locator (party of two); the risky one booked the day before, cash, one-way.
    return _manifest(
        "m-v1",
        _traveller("P1", "Fifita", "RISKY1", (2026, 2, 28), "CA", True, number="XK7654321"),
        _traveller("P2", "Tupou", "RISKY1", (2026, 2, 28), "CA", True),
        _traveller("P3", "Vea", "CALM01", (2025, 12, 1), "CC", False),
    )


def test_rows_carry_the_profilers_own_features_of_the_disposed_travellers():
    m = _flight()
    risky, calm = _hit(m, 0), _hit(m, 2)
    labels = build_labels(
        [_d(risky.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH), _d(calm.hit_id, "FJI", OUT.OUTCOME_FALSE_POSITIVE)],
        [risky, calm, _hit(m, 1)],  # the second traveller was hit but never disposed: no row
        [m],
    )
    frame = labels.frame
    assert frame.schema == pl.Schema(LABEL_SCHEMA)
    assert frame.height == 2 and labels.report.labels == 2 and labels.report.positives == 1
    by_hit = {row["hit_id"]: row for row in frame.iter_rows(named=True)}
    assert by_hit[risky.hit_id]["of_interest"] is True and by_hit[risky.hit_id]["outcome"] == "true_match"
    assert by_hit[calm.hit_id]["of_interest"] is False and by_hit[calm.hit_id]["outcome"] == "false_positive"
    assert by_hit[risky.hit_id]["sources"] == "watchlist"
    assert set(frame["feature_schema_version"]) == {FEATURE_SCHEMA_VERSION}
    # Exactly what the profiler computes for these travellers over the whole manifest (party of two, one
    # transit stop, booked the day before), so the model sees no train/serve skew.
    served = add_features(manifests_to_frame([m]), [m])
    for hit, t in ((risky, 0), (calm, 2)):
        row = frame.filter(pl.col("hit_id") == hit.hit_id)
        assert row.select(list(FEATURE_COLUMNS)).row(0) == served[t].select(list(FEATURE_COLUMNS)).row(0)
        assert np.array_equal(feature_matrix(row), feature_matrix(served[t]), equal_nan=True)
    risky_row = by_hit[risky.hit_id]
    assert (risky_row["party_size"], risky_row["transit_count"], risky_row["booking_lead_days"]) == (2, 1, 1)


def test_rows_hold_no_names_birth_dates_or_document_numbers():
    m = _flight()
    hit = _hit(m, 0)
    frame = build_labels([_d(hit.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH)], [hit], [m]).frame
    text = json.dumps(frame.rows(), default=str).upper()
    for personal in ("FIFITA", "SIONE", "XK7654321", "1975", "TON", "P1"):
        assert personal not in text
    assert not {"surname", "given_names", "nationality", "dob", "age", "documents"} & set(frame.columns)


def test_hits_whose_record_manifest_or_traveller_is_missing_are_skipped_and_counted():
    m = _flight()
    kept, lost_manifest, lost_traveller = _hit(m, 0), _hit(m, 1), _hit(m, 2)
    lost_manifest.manifest_id = "m-gone"  # retention removed this manifest version
    lost_traveller.hit_id = codec.hit_id(codec.flight_key(m), "ref:NOT-ON-THE-MANIFEST")
    labels = build_labels(
        [
            _d(kept.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH),
            _d(lost_manifest.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH),
            _d(lost_traveller.hit_id, "FJI", OUT.OUTCOME_FALSE_POSITIVE),
            _d("h-never-on-the-hits-topic", "FJI", OUT.OUTCOME_FALSE_POSITIVE),
        ],
        [kept, lost_manifest, lost_traveller],
        [m],
    )
    r = labels.report
    assert labels.frame["hit_id"].to_list() == [kept.hit_id]
    assert (r.disposed_hits, r.hit_missing, r.manifest_missing, r.traveller_missing, r.skipped) == (4, 1, 1, 1, 3)
    assert (r.labels, r.positives) == (1, 1)


def test_the_version_of_the_hit_the_member_decided_on_gives_the_features():
    v1 = _flight()
    v2 = _manifest("m-v2", *v1.travellers)
    v2.travellers[0].booking.payment_form = "CC"  # a later version: paid by card after all
    first, second = _hit(v1, 0, raised=10), _hit(v2, 0, raised=20)
    assert first.hit_id == second.hit_id

    def payment(at):
        return (
            build_labels([_d(first.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH, at=at)], [first, second], [v1, v2])
            .frame["payment_form"]
            .to_list()
        )

    assert payment(15) == ["CA"]  # disposed before the update: the first version
    assert payment(25) == ["CC"]  # after it: the update
    assert payment(5) == ["CA"]  # before either was raised (clocks disagree): the first raised
    # Clearance records and withdrawals on the hits topic are never a version.
    clearance = hit_pb2.Hit(manifest_id="m-v2", state=hit_pb2.HIT_STATE_WITHDRAWN, withdrawn_hit_ids=[first.hit_id])
    labels = hit_labels([_d(first.hit_id, "FJI", OUT.OUTCOME_TRUE_MATCH, at=25)])
    assert choose_versions(labels, [first, clearance])[first.hit_id].manifest_id == "m-v1"


def test_no_dispositions_no_rows():
    frame = label_rows({}, {}, {})
    assert frame.is_empty() and frame.schema == pl.Schema(LABEL_SCHEMA)


# -- files -----------------------------------------------------------------------------------------------------


def _labels_frame():
    m = _flight()
    hits = [_hit(m, t) for t in range(3)]
    outcomes = [OUT.OUTCOME_TRUE_MATCH, OUT.OUTCOME_SECONDARY_NEGATIVE, OUT.OUTCOME_FALSE_POSITIVE]
    return build_labels([_d(h.hit_id, "FJI", o) for h, o in zip(hits, outcomes, strict=True)], hits, [m]).frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_label_files_round_trip(tmp_path, suffix):
    frame = _labels_frame()
    path = write_labels_file(frame, tmp_path / f"labels{suffix}")
    assert read_labels_file(path).equals(frame)


def test_label_files_refuse_other_feature_versions_missing_columns_and_other_formats(tmp_path):
    frame = _labels_frame()
    path = tmp_path / "labels.csv"
    frame.with_columns(feature_schema_version=pl.lit(FEATURE_SCHEMA_VERSION + 1)).write_csv(path)
    with pytest.raises(LabelFileError, match="feature schema version"):
        read_labels_file(path)
    frame.drop("party_size").write_csv(path)
    with pytest.raises(LabelFileError, match="party_size"):
        read_labels_file(path)
    frame.with_columns(of_interest=pl.lit(None, dtype=pl.Boolean)).write_csv(path)
    with pytest.raises(LabelFileError, match="no of_interest"):
        read_labels_file(path)
    with pytest.raises(LabelFileError, match=".parquet or .csv"):
        write_labels_file(frame, tmp_path / "labels.json")


# -- training with labels ---------------------------------------------------------------------------------------


def _synthetic_labels(n, seed=5, positive_share=0.5):
    """n rows in the labels schema: in-transit travellers of interest, others not (a signal the synthetic
    history does not have: its label ignores in_transit)."""
    rng = np.random.default_rng(seed)
    rows = history(n, seed=seed).select(list(FEATURE_COLUMNS))
    positive = rng.random(n) < positive_share
    return rows.with_columns(
        in_transit=pl.Series(positive),
        of_interest=pl.Series(positive),
        hit_id=pl.Series([f"h-{i}" for i in range(n)]),
        outcome=pl.Series(["true_match" if p else "false_positive" for p in positive]),
        members=pl.lit(1, dtype=pl.Int32),
        conflicting=pl.lit(False),
        sources=pl.Series(["model" if i % 2 else "watchlist" for i in range(n)]),
        feature_schema_version=pl.lit(FEATURE_SCHEMA_VERSION, dtype=pl.Int32),
    ).select(list(LABEL_SCHEMA))


def test_weight_is_capped_so_dispositions_never_dominate():
    assert effective_label_weight(10.0, 100, 150_000) == 10.0
    # 150,000 rows at weight 10 would outweigh the history: capped at a quarter of the total weight.
    capped = effective_label_weight(10.0, 150_000, 150_000)
    assert capped == pytest.approx(1 / 3)
    assert capped * 150_000 / (capped * 150_000 + 150_000) == pytest.approx(0.25)


def test_few_labels_are_used_in_training_recorded_and_not_evaluated(tmp_path):
    labels = _synthetic_labels(MIN_LABELS_FOR_EVALUATION - 1)
    artefact = train_on_history(tmp_path, rows=5_000, seed=3, labels=labels, label_source="file labels.csv")
    section = artefact.metadata["dispositions"]
    assert section["labels"] == section["train_rows"] == MIN_LABELS_FOR_EVALUATION - 1
    assert section["positives"] == int(labels["of_interest"].sum())
    assert section["positive_share"] == round(labels["of_interest"].mean(), 4)
    assert section["evaluation"]["evaluated"] is False and "fewer than" in section["evaluation"]["reason"]
    assert section["weighting"]["per_row"] == 10.0
    assert section["raised_by"] == {"model": 24, "watchlist": 25}
    assert artefact.metadata["training"]["source"] == "synthetic.history + member dispositions"
    # Same features and schema hash as ever: the profiler loads it.
    assert artefact.metadata["feature_schema_hash"] == feature_schema_hash()
    assert load_model(artefact.path).metadata["dispositions"] == section


def test_enough_labels_are_partly_held_out_and_evaluated_and_move_the_model(tmp_path):
    labels = _synthetic_labels(400)
    plain = train_on_history(tmp_path / "plain", rows=20_000, seed=3)
    assert plain.metadata["dispositions"]["labels"] == 0
    with_labels = train_on_history(tmp_path / "labelled", rows=20_000, seed=3, labels=labels, label_weight=20.0)
    section = with_labels.metadata["dispositions"]
    evaluation = section["evaluation"]
    assert evaluation["evaluated"] is True
    assert evaluation["holdout_rows"] == 100 and section["train_rows"] == 300
    assert 0 < evaluation["holdout_positives"] < 100
    # The labels carry a signal the history lacks (in transit = of interest): learnt, and visible held out.
    assert with_labels.metadata["coefficients"]["in_transit"] > plain.metadata["coefficients"]["in_transit"] + 0.1
    assert evaluation["roc_auc"] > evaluation["synthetic_only_roc_auc"]
    # 300 rows at weight 20 against 15,000 synthetic training rows would be 29 % of the weight: capped at 25 %.
    assert section["weighting"]["requested_per_row"] == 20.0
    assert section["weighting"]["per_row"] == pytest.approx(15_000 / 300 / 3, abs=1e-4)
    assert section["weighting"]["share_of_training_weight"] == pytest.approx(0.25)


# -- command line ------------------------------------------------------------------------------------------------


def test_cli_trains_with_a_labels_file_and_shows_what_it_used(tmp_path):
    from typer.testing import CliRunner

    from services.profiler.model_cli import model_app

    runner = CliRunner()
    path = write_labels_file(_synthetic_labels(60), tmp_path / "labels.parquet")
    out = tmp_path / "models"
    trained = runner.invoke(
        model_app, ["train", "--out", str(out), "--rows", "5000", "--seed", "3", "--labels", str(path)]
    )
    assert trained.exit_code == 0, trained.output
    assert "disposition labels 60" in trained.output and "on 15 held-out disposition rows" in trained.output
    [artefact] = [p for p in out.iterdir() if p.name.startswith("risk-")]
    meta = json.loads((artefact / "metadata.json").read_text())
    assert meta["dispositions"]["source"] == "file labels.parquet"
    assert "any positive wins" in meta["dispositions"]["collection"]["rule"]
    shown = runner.invoke(model_app, ["show", str(artefact)])
    assert shown.exit_code == 0 and "disposition labels 60" in shown.output

    both = runner.invoke(model_app, ["train", "--out", str(out), "--dispositions", "--labels", str(path)])
    assert both.exit_code == 2 and "not both" in both.output
    # The file's format is checked before the broker is read: no broker is needed to refuse it.
    wrong = runner.invoke(model_app, ["labels", "--out", str(tmp_path / "labels.json")])
    assert wrong.exit_code == 2 and ".parquet or .csv" in wrong.output


def test_cli_refuses_a_labels_file_from_other_feature_definitions(tmp_path):
    from typer.testing import CliRunner

    from services.profiler.model_cli import model_app

    path = tmp_path / "labels.csv"
    _synthetic_labels(10).with_columns(feature_schema_version=pl.lit(FEATURE_SCHEMA_VERSION + 1)).write_csv(path)
    refused = CliRunner().invoke(model_app, ["train", "--out", str(tmp_path), "--rows", "5000", "--labels", str(path)])
    assert refused.exit_code == 2 and "feature schema version" in refused.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("risk-")]

"""Dispositions as model labels through the real broker: members dispose hits, the labels are built from the
dispositions, hits and manifests topics, and the model trains with them (library and `apihub model`)."""

from __future__ import annotations

import json
import re

import pytest
from hubkit import flight, plant
from typer.testing import CliRunner

from services import client
from services.profiler.frames import add_features, manifests_to_frame
from services.profiler.labels import read_labels, read_labels_file
from services.profiler.model import FEATURE_COLUMNS, METADATA_FILE, load_model
from services.profiler.model_cli import model_app
from services.wire import delivery_pb2, intake_pb2, manifest_pb2
from synthetic.history import train_on_history
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration


def _env(settings) -> dict[str, str]:
    return {"APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "APIHUB_TOPIC_PREFIX": settings.topic_prefix}


def _artefact(directory):
    [found] = [p for p in directory.iterdir() if p.name.startswith("risk-")]
    return json.loads((found / METADATA_FILE).read_text())


def test_members_dispositions_become_labels_and_train_the_model(hub, tmp_path):
    entries = demo_watchlists()["FJI"][:4]
    hub.load("FJI", entries)
    m = flight(["NAN", "APW"], carrier="FJ", number="733")  # Fiji and Samoa both get its hits
    departure = m.legs[0].scheduled_departure.ToDatetime()
    for i, entry in enumerate(entries):
        plant(m, entry, f"FJ733-L{i + 1}")
    # The first two listed travellers booked together (a party of two), in cash, one-way.
    for t in m.travellers[-4:-2]:
        t.reservation_locator = "LBL001"
        t.booking.booking_date.CopyFrom(manifest_pb2.PartialDate(year=departure.year, month=1, day=1))
        t.booking.payment_form, t.booking.one_way = "CA", True
    [receipt] = hub.submit(m)
    assert receipt.status == intake_pb2.RECEIPT_STATUS_ACCEPTED, receipt

    hits = {h.traveller.passenger_ref: h for h in hub.hits("FJI", want=4, idle=20)}
    assert sorted(hits) == ["FJ733-L1", "FJ733-L2", "FJ733-L3", "FJ733-L4"]
    chan = client.channel(hub.delivery_addr)

    def dispose(member, ref, outcome):
        client.dispose(chan, hub.token("member", member), member, hits[ref].hit_id, outcome)

    o = delivery_pb2
    dispose("FJI", "FJ733-L1", o.OUTCOME_FALSE_POSITIVE)
    dispose("FJI", "FJ733-L1", o.OUTCOME_TRUE_MATCH)  # revised: the latest outcome counts
    dispose("FJI", "FJ733-L2", o.OUTCOME_TRUE_MATCH)
    dispose("FJI", "FJ733-L3", o.OUTCOME_FALSE_POSITIVE)
    dispose("FJI", "FJ733-L4", o.OUTCOME_FALSE_POSITIVE)
    dispose("WSM", "FJ733-L4", o.OUTCOME_REFUSED_ENTRY)  # Samoa refused entry: any positive wins

    labels = read_labels(hub.settings)
    r = labels.report
    assert (r.dispositions, r.superseded, r.disposed_hits, r.conflicting) == (6, 1, 4, 1)
    assert (r.labels, r.positives, r.skipped, r.undecodable) == (4, 3, 0, 0)
    by_ref = {ref: h.hit_id for ref, h in hits.items()}
    rows = {row["hit_id"]: row for row in labels.frame.iter_rows(named=True)}
    assert {ref: rows[hit_id]["of_interest"] for ref, hit_id in by_ref.items()} == {
        "FJ733-L1": True,
        "FJ733-L2": True,
        "FJ733-L3": False,
        "FJ733-L4": True,
    }
    conflicted = rows[by_ref["FJ733-L4"]]
    assert (conflicted["outcome"], conflicted["members"], conflicted["conflicting"]) == ("refused_entry", 2, True)
    # The features are the profiler's, recomputed from the manifest as stored on the manifests topic.
    served = add_features(manifests_to_frame([m]), [m])
    for ref, hit_id in by_ref.items():
        t = next(i for i, traveller in enumerate(m.travellers) if traveller.passenger_ref == ref)
        assert tuple(rows[hit_id][c] for c in FEATURE_COLUMNS) == served[t].select(list(FEATURE_COLUMNS)).row(0)
    assert (rows[by_ref["FJ733-L1"]]["party_size"], rows[by_ref["FJ733-L1"]]["payment_form"]) == (2, "CA")

    artefact = train_on_history(tmp_path / "lib", rows=5_000, seed=3, labels=labels.frame, label_source="test")
    section = artefact.metadata["dispositions"]
    assert (section["labels"], section["positives"], section["positive_share"]) == (4, 3, 0.75)
    assert section["evaluation"]["evaluated"] is False
    assert load_model(artefact.path).version == artefact.version

    # The same through `apihub model`: straight from the broker, and through an exported file.
    runner = CliRunner()
    env = _env(hub.settings)
    direct = runner.invoke(
        model_app, ["train", "--dispositions", "--out", str(tmp_path / "direct"), "--rows", "5000"], env=env
    )
    assert direct.exit_code == 0, direct.output
    meta = _artefact(tmp_path / "direct")["dispositions"]
    assert (meta["labels"], meta["positives"], meta["source"].split()[1]) == (
        4,
        3,
        f"{hub.settings.topic_prefix}.dispositions.v1",
    )
    assert (meta["collection"]["conflicting"], meta["collection"]["superseded"]) == (1, 1)

    exported = tmp_path / "labels.csv"
    written = runner.invoke(model_app, ["labels", "--out", str(exported)], env=env)
    assert written.exit_code == 0, written.output
    assert "labels 4, of interest 3" in written.output
    assert read_labels_file(exported).sort("hit_id").equals(labels.frame.sort("hit_id"))
    offline = runner.invoke(
        model_app, ["train", "--labels", str(exported), "--out", str(tmp_path / "offline"), "--rows", "5000"]
    )
    assert offline.exit_code == 0, offline.output
    assert _artefact(tmp_path / "offline")["dispositions"]["labels"] == 4

    # Nothing personal in what the commands print or write (compared word by word).
    said = set(
        re.findall(r"[A-Z0-9]+", (direct.output + written.output + offline.output + exported.read_text()).upper())
    )
    fields = " ".join(f"{e.surname} {e.given_names} {e.document_number}" for e in entries).upper()
    personal = {word for word in re.findall(r"[A-Z0-9]+", fields) if len(word) >= 3}
    assert personal and not said & personal

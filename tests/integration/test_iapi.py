"""Interactive API through the real broker: each directive, CUSRES read back, a policy taking effect without a
restart, an override and its revocation, one hit id for a check and the batch manifest, the fallback while the
tables load, and what a carrier may not do."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import grpc
import pytest
from hubkit import RunningHub, flight, plant

from services import client
from services.bus import Topics, ensure_topics, read_to_end
from services.directory import load_directory
from services.paxlst.cusres import parse_cusres
from services.paxlst.writer import render_paxlst
from services.profiler.check import CheckServer
from services.profiler.worker import ProfilerWorker
from services.wire import check_pb2, delivery_pb2
from synthetic.demo import show_interactive_check, write_demo_files
from synthetic.traffic import demo_watchlists

pytestmark = pytest.mark.integration

OK = check_pb2.DIRECTIVE_OK_TO_BOARD
DNB = check_pb2.DIRECTIVE_DO_NOT_BOARD
CA = check_pb2.DIRECTIVE_CONTACT_AUTHORITY
INSUFFICIENT = check_pb2.DIRECTIVE_INSUFFICIENT_DATA
CATEGORIES = "[criminal_deportee, people_smuggling, document_fraud, trafficking]"


def policy(member: str, section: str, require: str = "[]", fallback: str = "CONTACT_AUTHORITY") -> str:
    return f"""version: 1
member: {member}
fallback: {fallback}
require: {require}
{section}:
  - watchlist: {{categories: {CATEGORIES}, min_score: 0.9}}
messages:
  DO_NOT_BOARD: "DO NOT BOARD - CALL {member} IMMIGRATION"
  CONTACT_AUTHORITY: "CALL {member} IMMIGRATION BEFORE BOARDING"
"""


def load_policy(hub: RunningHub, member: str, text: str) -> None:
    chan = client.channel_for(hub.settings, hub.delivery_addr)
    answer = client.load_board_policy(chan, hub.token("member", member), member, text)
    assert not answer.errors, answer.errors


def checked_flight(entry, ref: str, route=("NAN", "TBU")):
    """One ordinary traveller, then the watchlisted one."""
    m = flight(list(route), passengers=1)
    plant(m, entry, ref)
    return m


def directives(response) -> list[int]:
    return [a.directive for a in response.answers]


def test_each_directive_and_a_policy_change_without_a_restart(hub):
    entry = demo_watchlists()["TON"][0]
    assert hub.load("TON", [entry]).entries == 1
    m = checked_flight(entry, "FJ911-P1")

    # No policy loaded: Tonga's default answers OK to board; the hit still reaches Tonga, flagged interactive.
    first = hub.check(m)
    assert directives(first) == [OK, OK] and not first.fallback
    assert [a.passenger_ref for a in first.answers] == [m.travellers[0].passenger_ref, "FJ911-P1"]
    [hit] = hub.hits("TON", want=1, idle=20)
    assert hit.interactive and hit.traveller.passenger_ref == "FJ911-P1"
    assert dict(hit.directives) == {"TON": OK}
    # Fiji (the embarkation port's member) gets the hit as usual, but no board directive: none of its ports lie
    # ahead of the traveller, and it never sees Tonga's.
    [fiji] = hub.hits("FJI", want=1, idle=20)
    assert fiji.hit_id == hit.hit_id and dict(fiji.directives) == {}

    load_policy(hub, "TON", policy("TON", "do_not_board"))
    refused = hub.check(m)
    assert directives(refused) == [OK, DNB]
    assert refused.answers[1].message == "DO NOT BOARD - CALL TON IMMIGRATION"
    # Nothing of why: the answer carries no reason, category, score or list.
    text = str(refused)
    assert entry.entry_id not in text and "criminal" not in text and "score" not in text

    load_policy(hub, "TON", policy("TON", "contact_authority"))
    assert directives(hub.check(m)) == [OK, CA]

    # A required field missing: INSUFFICIENT_DATA naming it, unless a refusal outranks it.
    load_policy(hub, "TON", policy("TON", "do_not_board", require="[document_number, nationality]"))
    del m.travellers[0].documents[:]
    m.travellers[1].ClearField("nationality")
    answer = hub.check(m)
    assert directives(answer) == [INSUFFICIENT, DNB]
    assert list(answer.answers[0].missing_fields) == ["travellers[0].documents[0].number"]


def test_an_override_lets_the_traveller_board_and_both_are_audited(hub):
    entry = demo_watchlists()["TON"][1]
    hub.load("TON", [entry])
    load_policy(hub, "TON", policy("TON", "do_not_board"))
    m = checked_flight(entry, "FJ911-P2")
    assert directives(hub.check(m)) == [OK, DNB]
    [hit] = hub.hits("TON", want=1, idle=20)
    assert dict(hit.directives) == {"TON": DNB}

    chan = client.channel_for(hub.settings, hub.delivery_addr)
    token = hub.token("member", "TON")
    given = client.override(chan, token, "TON", hit.hit_id, "identity confirmed with the embassy")
    assert (given.member, given.hit_id, given.revoked) == ("TON", hit.hit_id, False)
    assert directives(hub.check(m)) == [OK, OK]

    client.override(chan, token, "TON", hit.hit_id, "withdrawn", revoke=True)
    assert directives(hub.check(m)) == [OK, DNB]

    events = [
        delivery_pb2.AuditEvent.FromString(r.value)
        for r in read_to_end(hub.settings, Topics(hub.settings.topic_prefix).audit, "test-audit")
        if r.value and not any(k == "apihub-record" for k, _ in (r.headers or []))
    ]
    checked = [e.detail for e in events if e.event == "checked" and e.hit_id == hit.hit_id]
    assert len(checked) == 3
    assert checked[0].startswith("DO_NOT_BOARD to carrier FJ")
    assert checked[1].startswith("OK_TO_BOARD to carrier FJ") and checked[1].endswith("(override)")
    assert [e.detail for e in events if e.event == "overridden"] == ["override", "revoked"]


def test_a_check_and_the_later_batch_manifest_are_one_hit(hub):
    entry = demo_watchlists()["TON"][2]
    hub.load("TON", [entry])
    m = checked_flight(entry, "FJ911-P3")
    hub.check(m)
    [checked] = hub.hits("TON", want=1, idle=20)
    [receipt] = hub.submit(m)
    assert receipt.status == 1
    [batch] = hub.hits("TON", want=1, idle=20)
    assert batch.hit_id == checked.hit_id and batch.version > checked.version
    assert checked.interactive and not batch.interactive


def test_paxlst_iapi_is_answered_with_cusres(hub):
    entry = demo_watchlists()["TON"][3]
    hub.load("TON", [entry])
    load_policy(hub, "TON", policy("TON", "do_not_board"))
    m = checked_flight(entry, "FJ911-P4")
    m.travellers[0].passenger_ref = "FJ911-P0"
    m.travellers[0].reservation_locator = "ABC123"
    data = render_paxlst(m, interchange_ref="77", sender="FJ", recipient="APIHUB")
    chan = client.channel_for(hub.settings, hub.check_addr)
    reply = client.check_paxlst(chan, hub.token("carrier", "FJ"), data)
    assert not reply.errors and [directives(c) for c in reply.checks] == [[OK, DNB]]

    cusres = parse_cusres(reply.cusres)
    assert not cusres.errors, cusres.errors
    assert (cusres.sender, cusres.recipient, cusres.interchange_ref) == ("APIHUB", "FJ", "77")
    [message] = cusres.messages
    assert message.flight == "FJ911" and message.transaction_ref == m.message_ref
    assert [(t.passenger_ref, t.code) for t in message.travellers] == [("FJ911-P0", "0Z"), ("FJ911-P4", "1Z")]
    assert message.travellers[0].reservation_locator == "ABC123"


def test_a_carrier_checks_only_its_own_flights(hub):
    m = flight(["NAN", "TBU"], passengers=1)
    with pytest.raises(grpc.RpcError) as err:
        hub.check(m, carrier="NF")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_fallback_answers_while_the_tables_load(settings):
    settings = settings.model_copy(update={"check_deadline_ms": 400})
    directory = load_directory()
    ensure_topics(settings, directory.codes)
    worker = ProfilerWorker(settings, directory)
    server = CheckServer(settings, directory, worker, listen="127.0.0.1:0").start()
    try:
        chan = client.channel_for(settings, f"127.0.0.1:{server.port}")
        m = flight(["NAN", "TBU"], passengers=2)
        token = client_token(settings)
        # A table being applied holds the tables (as the worker's warm-up does while a large list loads).
        with worker.lock.writing():
            loading = client.check_travellers(chan, token, m)
        assert loading.fallback and directives(loading) == [CA, CA]
        ready = client.check_travellers(chan, token, m)
        assert not ready.fallback and directives(ready) == [OK, OK]
    finally:
        server.stop(grace=1)
        worker.close()


def client_token(settings) -> str:
    from services.auth import issue_token

    return issue_token(settings, "carrier", "FJ")


def test_the_demo_scene_and_apihub_check_on_the_demo_files(hub, tmp_path):
    s = hub.settings.model_copy(update={"delivery_listen": hub.delivery_addr, "check_listen": hub.check_addr})
    hub.load("TON", demo_watchlists()["TON"])
    said: list[str] = []
    show_interactive_check(s, said.append, threading.Event())
    checks = [line for line in said if line.startswith("[carrier FJ]")]
    assert [line.rsplit(": ", 1)[1] for line in checks] == ["OK_TO_BOARD"] * 2 + ["DO_NOT_BOARD"] + ["OK_TO_BOARD"] * 3
    assert any("[member TON] duty officer overrides" in line for line in said)

    # A carrier's agent checks the demo files (the same check-in) with the CLI: JSON and PAXLST alike.
    written = write_demo_files(tmp_path / "demo", manifests=1)
    files = [str(p) for p in written if p.name.startswith("iapi-check")]
    env = {**os.environ, "APIHUB_TOPIC_PREFIX": s.topic_prefix, "APIHUB_KAFKA_BOOTSTRAP": s.kafka_bootstrap}
    cusres = tmp_path / "answers.edi"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "check", *files, "--server", hub.check_addr, "--cusres", str(cusres)],
        capture_output=True,
        text=True,
        env={**env, "APIHUB_TOKEN": hub.token("carrier", "FJ")},
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 6, done.stdout + done.stderr
    assert all(line.split(": ")[2].split(" ")[0] in ("OK_TO_BOARD", "DO_NOT_BOARD") for line in lines)
    # The override stands for the flight of the scene; a check-in in the next hour would be another flight.
    assert done.returncode in (0, 1) and (done.returncode == 0) == all("OK_TO_BOARD" in x for x in lines)
    [answer] = [parse_cusres(block + b"\n") for block in cusres.read_bytes().split(b"\n\n") if block.strip()]
    assert [t.passenger_ref for t in answer.messages[0].travellers] == ["FJ209-001", "FJ209-002", "FJ209-003"]

"""The demo: what `apihub up` plays on a running hub by default, and the files `apihub dev demo-files` writes.

run_demo loads the demo watchlists, follows every member's hits and feeds demo manifests (synthetic.traffic) to
the hub that services.launcher started; write_demo_files writes the same data as files for trying `apihub submit`,
`watchlist load` and `screen` by hand. Both use the hub's public clients only (services.client), as a carrier and
a member would.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf import json_format

from services import client
from services.auth import issue_token
from services.codec import flight_key, format_partial_date, hit_id, hit_to_json, traveller_key
from services.directory import load_directory
from services.launcher import Hub, console_url
from services.paxlst.writer import render_paxlst
from services.wire import check_pb2, delivery_pb2, intake_pb2, manifest_pb2
from synthetic.traffic import DemoTraffic, add_passengers, add_planted, cancelled_reservation, demo_watchlists

# How `apihub up` names this module to a user whose install has none of it.
DEMO_HINT = "a source checkout runs it: `make demo`"
# The demo's console officers: one member admin per member, all with this public password (demo only, like the
# demo's token secret; `apihub users passwd` changes one).
DEMO_OFFICER = "demo"
DEMO_PASSWORD = "pacific-demo-only"


def add_demo_officers(settings, members: list[str]) -> list[str]:
    """A member admin named DEMO_OFFICER for each member that has no officer of that name; the members done."""
    from services.console.users import UserWriter, new_user, read_users

    table = read_users(settings, "apihub-demo-users")
    missing = [m for m in members if table.get(m, DEMO_OFFICER) is None]
    if missing:
        writer = UserWriter(settings, "apihub-demo-users")
        try:
            for member in missing:
                writer.put(new_user(member, DEMO_OFFICER, "member-admin", DEMO_PASSWORD))
        finally:
            writer.close()
    return missing


def _show_hits(member: str, say: Callable[[str], None]) -> Callable[[delivery_pb2.Delivery], None]:
    """A Follower callback printing each hit a member's contact point receives, in one line."""

    def show(delivery: delivery_pb2.Delivery) -> None:
        h = hit_to_json(delivery.hit)
        why = "; ".join(
            f"{r['source']} {r['id']} ({r['score']:.2f}{', ' + r['band'] if r['band'] else ''}): {r['explanation']}"
            for r in h["reasons"]
        )
        f = h["flight"]
        if h["state"] == "withdrawn":
            say(f"[{member} contact point] hit {h['hit_id']} WITHDRAWN (passenger {h['passenger']['ref']})")
            return
        say(
            f"[{member} contact point] hit {h['hit_id']} on {f['carrier']}{f['number']} "
            f"{'-'.join(f['route'])} {f['departure'][:16]} passenger {h['passenger']['ref']} "
            f"score {h['score']:.2f}{' for review' if h['for_review'] else ''} — {why}"
        )

    return show


def run_demo(hub: Hub, stop: threading.Event, interval: float, say: Callable[[str], None]) -> None:
    """Load demo watchlists, follow every member's hits in threads, and feed manifests until ``stop``."""
    s = hub.settings
    secret = s  # tokens are signed by the settings' key ring (APIHUB_AUTH_KEYS, or APIHUB_AUTH_SECRET)
    member_chan = client.channel_for(s, s.delivery_listen)
    for owner, entries in demo_watchlists().items():
        client.load_watchlist(member_chan, issue_token(secret, "member", owner), owner, entries)
    say("Demo watchlists loaded for FJI, WSM, AUS and TON (synthetic people).")

    def follow(member: str) -> None:
        follower = client.Follower(member_chan, issue_token(secret, "member", member), member)
        while not stop.is_set():
            try:
                follower.follow(_show_hits(member, say), should_stop=stop.is_set)
            except grpc.RpcError:
                stop.wait(1)  # the router restarts or shuts down: resume from the acknowledged cursor

    directory = load_directory(s.directory_file)
    for member in directory.codes:
        threading.Thread(target=follow, args=(member,), daemon=True, name=f"follow-{member}").start()
    add_demo_officers(s, directory.codes)
    say(
        f"Console: {console_url(s)}, sign in with any member, user {DEMO_OFFICER!r}, password {DEMO_PASSWORD!r} "
        "(demo only)."
    )

    try:
        show_interactive_check(s, say, stop)
    except grpc.RpcError as exc:  # the demo goes on with the batch traffic; the scene is not essential
        say(f"[iAPI] the interactive check scene stopped: {exc.code().name}: {exc.details()}")

    # Carriers alternate between gRPC and PAXLST; now and then one cancels the reservation of a watchlisted
    # passenger it reported earlier (an XR change), and the members that got the hit see it withdrawn.
    traffic = DemoTraffic()
    ingest_chan = client.channel_for(s, s.ingest_listen)
    to_cancel: list[tuple[manifest_pb2.Manifest, str]] = []
    sent = 0
    while not stop.is_set():
        sent += 1
        if to_cancel and sent % 4 == 0:
            original, ref = to_cancel.pop(0)
            m, what = cancelled_reservation(original, ref), f"cancels the reservation of {ref}"
        else:
            m = traffic.next_manifest()
            what = "passenger list"
            if traffic.planted:
                to_cancel.append((m, traffic.planted))
        token = issue_token(secret, "carrier", m.carrier)
        try:
            if sent % 2:
                receipt, via = client.submit(ingest_chan, token, [m])[0], "gRPC"
            else:
                receipt, via = client.submit_paxlst(ingest_chan, token, render_paxlst(m)).receipts[0], "PAXLST"
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            # Intake restarting (apihub up's supervisor brings it back) or the broker away: this manifest is
            # skipped, the traffic goes on.
            say(f"[carrier {m.carrier}] intake unavailable ({exc.code().name}); retrying with the next manifest")
            stop.wait(interval)
            hub.check_children()
            continue
        status = intake_pb2.ReceiptStatus.Name(receipt.status).removeprefix("RECEIPT_STATUS_").lower()
        route = "-".join([leg.origin for leg in m.legs] + [m.legs[-1].destination])
        say(
            f"[carrier {m.carrier}] {via} {what} {m.carrier}{m.flight_number} {route}: {receipt.passengers} "
            f"passengers, {receipt.crew} crew -> {status} ({receipt.manifest_id})"
        )
        stop.wait(interval)
        hub.check_children()


# Tonga's demo board policy: its watchlist's people may not board a flight to Tonga.
DEMO_BOARD_POLICY = """version: 1
member: TON
fallback: CONTACT_AUTHORITY
require: [date_of_birth, document_number]
do_not_board:
  - watchlist: {min_score: 0.9}
messages:
  DO_NOT_BOARD: "DO NOT BOARD - CALL TONGA IMMIGRATION (DEMO)"
  CONTACT_AUTHORITY: "CALL TONGA IMMIGRATION BEFORE BOARDING (DEMO)"
"""


def check_in(carrier: str = "FJ", number: str = "209") -> tuple[manifest_pb2.Manifest, str]:
    """A check-in at Nadi for Nuku'alofa: two ordinary passengers and a person of Tonga's demo watchlist; the
    manifest and the watchlisted passenger's reference."""
    departure = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    m = manifest_pb2.Manifest(
        carrier=carrier,
        transport_mode=manifest_pb2.TRANSPORT_MODE_AIR,
        flight_number=number,
        function=manifest_pb2.MESSAGE_FUNCTION_ORIGINAL,
    )
    m.message_ref = f"CHECKIN-{carrier}{number}"
    leg = m.legs.add(origin="NAN", destination="TBU")
    leg.scheduled_departure.FromDatetime(departure)
    leg.scheduled_arrival.FromDatetime(departure + timedelta(hours=2))
    add_passengers(m, random.Random(5), 2, departure, f"{carrier}{number}")
    ref = f"{carrier}{number}-003"
    add_planted(m, demo_watchlists()["TON"][0], ref, departure)
    return m, ref


def show_interactive_check(s, say: Callable[[str], None], stop: threading.Event) -> None:
    """The interactive API in three steps: Tonga's board policy, a check-in answered DO NOT BOARD for a person of
    its list, Tonga's duty officer's override, and the carrier's re-check answered OK TO BOARD."""
    member_chan = client.channel_for(s, s.delivery_listen)
    tonga = issue_token(s, "member", "TON")
    client.load_board_policy(member_chan, tonga, "TON", DEMO_BOARD_POLICY)
    say("[iAPI] Tonga's board policy loaded: people of its watchlist may not board for Tonga.")
    m, ref = check_in()
    check_chan = client.channel_for(s, s.check_listen)
    carrier = issue_token(s, "carrier", m.carrier)

    def check(when: str) -> list:
        answer = client.check_travellers(check_chan, carrier, m)
        for a in answer.answers:
            name = check_pb2.Directive.Name(a.directive).removeprefix("DIRECTIVE_")
            say(f"[carrier {m.carrier}] {when} check-in {m.carrier}{m.flight_number} NAN-TBU {a.passenger_ref}: {name}")
        return list(answer.answers)

    answers = check("iAPI")
    refused = [a for a in answers if a.passenger_ref == ref and a.directive == check_pb2.DIRECTIVE_DO_NOT_BOARD]
    if not refused:
        return
    hit_id = hit_id_of(m, ref)
    # The duty officer overrides the hit once it reached Tonga (the router checks Tonga received it).
    for _ in range(60):
        try:
            client.override(member_chan, tonga, "TON", hit_id, "identity confirmed with the embassy (demo)")
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND or stop.wait(0.5):
                raise
    say(f"[member TON] duty officer overrides the do-not-board of hit {hit_id} (reason recorded in the audit trail)")
    check("re-check after the override:")


def hit_id_of(m: manifest_pb2.Manifest, passenger_ref: str) -> str:
    [traveller] = [t for t in m.travellers if t.passenger_ref == passenger_ref]
    return hit_id(flight_key(m), traveller_key(traveller))


def _watchlist_csv(entries: list[delivery_pb2.WatchlistEntry]) -> str:
    """A watchlist in the CSV form `apihub watchlist load` reads (client.WATCHLIST_COLUMNS)."""
    rows = [",".join(client.WATCHLIST_COLUMNS)]
    for e in entries:
        sex = {1: "M", 2: "F", 3: "X"}.get(e.sex, "")
        fields = [
            e.entry_id,
            e.surname,
            e.given_names,
            format_partial_date(e.date_of_birth),
            sex,
            e.nationality,
            e.document_number,
            e.document_issuer,
            e.category,
            e.owner,
        ]
        rows.append(",".join(fields))
    return "\n".join(rows) + "\n"


def write_demo_files(directory: Path, manifests: int = 3) -> list[Path]:
    """Demo manifests (JSON) and one demo watchlist per member (CSV) in `directory`; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    traffic = DemoTraffic()
    for i in range(manifests):
        m = traffic.next_manifest()
        path = directory / f"manifest-{m.carrier}{m.flight_number}-{i + 1}.json"
        path.write_text(json_format.MessageToJson(m, preserving_proto_field_name=True))
        written.append(path)
    m, _ = check_in()
    path = directory / "iapi-check-FJ209.json"
    path.write_text(json_format.MessageToJson(m, preserving_proto_field_name=True))
    written.append(path)
    path = directory / "iapi-check-FJ209.edi"
    path.write_bytes(render_paxlst(m, recipient="APIHUB"))
    written.append(path)
    path = directory / "board-policy-TON.yaml"
    path.write_text(DEMO_BOARD_POLICY)
    written.append(path)
    for owner, entries in demo_watchlists().items():
        path = directory / f"watchlist-{owner}.csv"
        path.write_text(_watchlist_csv(entries))
        written.append(path)
    return written

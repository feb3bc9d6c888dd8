"""Member rules through the real broker: loaded while the hub runs, changed, and in force without a restart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hubkit import flight

from services import client
from services.wire import manifest_pb2

pytestmark = pytest.mark.integration

RULES = """owner: FJI
rules:
  - id: FJI-CREW-CHECK
    description: Crew members on flights through Fiji (test rule)
    category: test
    score: 0.4
    enabled: {enabled}
    when:
      role: crew
"""


def _with_crew(number: str) -> manifest_pb2.Manifest:
    m = flight(["NAN", "TBU"], number=number)
    crew = m.travellers.add()
    crew.CopyFrom(m.travellers[0])
    crew.role, crew.passenger_ref, crew.surname = manifest_pb2.TRAVELLER_ROLE_CREW, f"FJ{number}-C1", "Crewmember"
    return m


def test_a_rule_loaded_and_then_changed_takes_effect_without_a_restart(hub, tmp_path):
    chan = client.channel(hub.delivery_addr)
    token = hub.token("member", "FJI")
    reply = client.load_rules(chan, token, "FJI", RULES.format(enabled="true"))
    assert (reply.rules, list(reply.errors)) == (1, [])
    hub.submit(_with_crew("301"))
    [hit] = hub.hits("FJI", want=1, idle=20)
    assert hit.traveller.passenger_ref == "FJ301-C1"
    assert [(r.id, r.owner) for r in hit.reasons] == [("FJI-CREW-CHECK", "FJI")]
    # The flight lands in Tonga: Tonga has jurisdiction too, so it receives the hit Fiji's rule raised.
    assert [h.hit_id for h in hub.hits("TON", want=1, idle=20)] == [hit.hit_id]

    assert client.load_rules(chan, token, "FJI", RULES.format(enabled="false")).rules == 0
    hub.submit(_with_crew("303"))
    assert hub.hits("FJI", idle=4) == []


def test_a_rule_file_with_mistakes_is_refused_with_line_numbers(hub, tmp_path):
    bad = tmp_path / "fji.yaml"
    bad.write_text(RULES.format(enabled="true").replace("role: crew", "rank: captain"))
    env = {**os.environ, "APIHUB_TOPIC_PREFIX": hub.settings.topic_prefix}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "rules",
            "load",
            "--server",
            hub.delivery_addr,
            "--member",
            "FJI",
            "--token",
            hub.token("member", "FJI"),
            str(bad),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    assert "line 9" in out.stderr and "FJI-CREW-CHECK" in out.stderr and "rank" in out.stderr

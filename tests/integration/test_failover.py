"""Failover in seconds: of two profiler processes, the survivor of a kill -9 takes over the dead one's partitions
(session timeout APIHUB_KAFKA_SESSION_TIMEOUT_MS, 6 s), and a restarted one takes its name and partitions back
(static group membership, services/instances.py). Waits are bounded by deadlines; nothing asserts a duration."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubkit import flight

from services import codec
from services.bus import Topics, ensure_topics, make_admin, make_consumer, make_producer
from services.wire import hit_pb2

pytestmark = pytest.mark.integration

# Bounds on each wait: generous for a loaded two-core machine, far below the 45 s that a dead member's session
# held its partitions with kafka-python's default session timeout.
TAKE_OVER_DEADLINE_S = 30.0
START_DEADLINE_S = 90.0


class Profilers:
    """Profiler processes (`apihub serve profiler`) on the test's topics, each with its own log."""

    def __init__(self, settings, workdir: Path):
        self.settings = settings
        self.workdir = workdir
        self.group = f"{settings.topic_prefix}.profiler"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "APIHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "APIHUB_TOPIC_PREFIX": settings.topic_prefix,
            "APIHUB_PROFILER_METRICS_PORT": "-1",
            "APIHUB_PROFILER_POLL_MS": "100",
        }
        self.env.pop("APIHUB_INSTANCE_ID", None)

    def start(self, label: str) -> str:
        """Start a profiler; its group instance id once it has logged it."""
        log = self.log(label)
        seen = log.read_text().count("profiler running") if log.exists() else 0
        with log.open("ab") as out:
            self.procs[label] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "profiler"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            names = re.findall(r"profiler running: group \S+ as (\S+),", log.read_text())
            if len(names) > seen:
                return names[-1]
            assert self.procs[label].poll() is None, f"profiler {label} exited:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"profiler {label} did not start:\n{log.read_text()[-3000:]}")

    def kill(self, label: str) -> None:
        proc = self.procs.pop(label)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log(self, label: str) -> Path:
        return self.workdir / f"profiler-{label}.log"

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def assignments(settings, group: str) -> dict[str, set[int]]:
    """Group instance id -> the partitions the broker has assigned to it (members without one: by member id)."""
    admin = make_admin(settings, "failover-test-admin")
    try:
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if described.get("group_state", described.get("state")) != "Stable":
        return {}
    found = {}
    for member in described.get("members") or []:
        assignment = member.get("member_assignment")
        pairs = getattr(assignment, "assigned_partitions", None)
        if pairs is None and isinstance(assignment, dict):
            pairs = [(t["topic"], t["partitions"]) for t in assignment.get("assigned_partitions") or []]
        partitions = {p for topic, parts in (pairs or []) for p in parts}
        found[member.get("group_instance_id") or member["member_id"]] = partitions
    return found


def wait_for_assignments(settings, group: str, names: set[str]) -> dict[str, set[int]]:
    """Until exactly these members hold every partition between them, each at least one."""
    deadline = time.monotonic() + START_DEADLINE_S
    seen: dict[str, set[int]] = {}
    while time.monotonic() < deadline:
        seen = assignments(settings, group)
        if set(seen) == names and all(seen.values()) and len(set().union(*seen.values())) == settings.partitions:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"group {group} never settled on {sorted(names)}: last seen {seen}")


class Manifests:
    """Sends manifests straight onto chosen partitions of the manifests topic; watches the hits topic for the
    record every scored manifest yields (its clearance)."""

    def __init__(self, settings):
        self.topics = Topics(settings.topic_prefix)
        self.producer = make_producer(settings, "failover-test")
        self.consumer = make_consumer(settings, None, "failover-test-hits")
        self.consumer.subscribe([self.topics.hits])
        self.scored: set[str] = set()
        self.sent = 0

    def send(self, partition: int) -> str:
        self.sent += 1
        m = flight(["SYD", "NAN"], number=str(700 + self.sent), seed=40 + self.sent)
        m.manifest_id = codec.manifest_id(m)
        m.received_at.GetCurrentTime()
        key = codec.flight_key(m).encode()
        self.producer.send(self.topics.manifests, key=key, value=m.SerializeToString(), partition=partition)
        self.producer.flush(10)
        return m.manifest_id

    def wait_scored(self, manifest_id: str, deadline_s: float) -> float:
        """Seconds until the manifest's records were on the hits topic; fails past the deadline."""
        started = time.monotonic()
        while manifest_id not in self.scored:
            assert time.monotonic() - started < deadline_s, f"manifest {manifest_id} not scored in {deadline_s:.0f}s"
            for batch in self.consumer.poll(timeout_ms=200).values():
                self.scored.update(hit_pb2.Hit.FromString(r.value).manifest_id for r in batch)
        return time.monotonic() - started

    def close(self) -> None:
        self.producer.close(5)
        self.consumer.close()


def eventually(condition, deadline_s: float = 10.0) -> None:
    """The profiler logs its batch just after the broker acknowledged its output: wait for the line, bounded."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_survivor_takes_over_a_killed_profiler_and_a_restarted_one_takes_its_place(settings, tmp_path):
    ensure_topics(settings, [])
    profilers, manifests = Profilers(settings, tmp_path), Manifests(settings)
    try:
        first = profilers.start("a")
        second = profilers.start("b")
        assert first != second  # two processes of one group on one host: two names (two slots)
        owned = wait_for_assignments(settings, profilers.group, {first, second})
        # Both work: a manifest on each one's partitions is scored.
        for name in (first, second):
            manifests.wait_scored(manifests.send(min(owned[name])), START_DEADLINE_S)

        profilers.kill("a")
        taken_over = manifests.wait_scored(manifests.send(min(owned[first])), TAKE_OVER_DEADLINE_S)
        print(f"survivor scored the killed profiler's partition after {taken_over:.1f}s")
        eventually(lambda: profilers.log("b").read_text().count("batch:") >= 2)

        # Restarted in the killed one's place: the same name (the kernel released its slot), partitions again.
        assert profilers.start("a") == first
        owned = wait_for_assignments(settings, profilers.group, {first, second})
        before = profilers.log("a").read_text().count("batch:")
        manifests.wait_scored(manifests.send(min(owned[first])), TAKE_OVER_DEADLINE_S)
        eventually(lambda: profilers.log("a").read_text().count("batch:") > before)  # it scored it, not "b"

        # Killed and restarted at once, as a supervisor does: the newcomer takes the dead one's partitions back
        # under its name, without waiting for the old session to end.
        profilers.kill("a")
        assert profilers.start("a") == first
        resumed = manifests.wait_scored(manifests.send(min(owned[first])), TAKE_OVER_DEADLINE_S)
        print(f"restarted profiler scored its partition {resumed:.1f}s after it started")
        for label in ("a", "b"):
            assert "Traceback" not in profilers.log(label).read_text()
    finally:
        profilers.close()
        manifests.close()

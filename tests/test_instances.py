"""Consumer-group member names (services/instances.py): one per process, the same again after a restart."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from services import instances
from services.config import HubSettings
from services.errors import ConfigError


@pytest.fixture
def locks(tmp_path, monkeypatch):
    monkeypatch.setattr(instances, "lock_dir", lambda: tmp_path)
    return tmp_path


def test_processes_of_one_group_get_one_slot_each_and_a_released_slot_is_taken_again(locks):
    settings = HubSettings()
    first = instances.claim_instance(settings, "apihub.profiler", "profiler")
    second = instances.claim_instance(settings, "apihub.profiler", "profiler")
    other_group = instances.claim_instance(settings, "apihub.router", "router")
    host = socket.gethostname()
    assert first.name.endswith("-profiler-0") and second.name.endswith("-profiler-1")
    assert first.name.startswith(host.split(".")[0][:10])
    assert other_group.name.endswith("-router-0")  # slots are per group
    assert all(instances.VALID_NAME.match(n.name) for n in (first, second, other_group))

    first.release()
    first.release()  # idempotent
    assert sorted(p.name for p in locks.iterdir()) == ["apihub.profiler.slot.1.lock", "apihub.router.slot.0.lock"]
    again = instances.claim_instance(settings, "apihub.profiler", "profiler")
    assert again.name == first.name  # the restarted process takes the name of the one that ended
    for claimed in (second, other_group, again):
        claimed.release()
    assert list(locks.iterdir()) == []  # released names leave no lock file behind


def test_a_killed_process_leaves_its_slot_to_the_next(locks):
    # The lock is the kernel's: it goes with the process, however it ends (here: SIGKILL before any cleanup).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from services import instances
                from services.config import HubSettings
                instances.lock_dir = lambda: __import__("pathlib").Path({str(locks)!r})
                print(instances.claim_instance(HubSettings(), "g", "profiler").name, flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = holder.stdout.readline().strip()
        mine = instances.claim_instance(HubSettings(), "g", "profiler")
        assert held.endswith("-0") and mine.name.endswith("-1")
        mine.release()
    finally:
        holder.kill()
        holder.wait()
    after = instances.claim_instance(HubSettings(), "g", "profiler")
    assert after.name == held
    after.release()


def test_an_instance_id_is_used_as_it_is_and_never_twice_on_one_host(locks):
    settings = HubSettings(instance_id="pod-7")
    profiler = instances.claim_instance(settings, "apihub.profiler", "profiler")
    router = instances.claim_instance(settings, "apihub.router", "router")  # another group: the same name is fine
    assert profiler.name == router.name == "pod-7"
    with pytest.raises(ConfigError, match="APIHUB_INSTANCE_ID=pod-7: another profiler process"):
        instances.claim_instance(settings, "apihub.profiler", "profiler")
    profiler.release()
    router.release()


def test_an_unusable_lock_directory_leaves_the_process_a_dynamic_member(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(instances, "lock_dir", lambda: blocker / "locks")  # under a file: cannot be made
    claimed = instances.claim_instance(HubSettings(), "apihub.router", "router")
    assert claimed.name is None
    assert "no static group membership" in caplog.text


def test_invalid_instance_ids_are_refused_by_the_settings():
    with pytest.raises(ValueError, match="APIHUB_INSTANCE_ID"):
        HubSettings(instance_id="pod 7")

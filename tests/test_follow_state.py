"""The record of what a member's tool has shown (services.follow_state): durable and whole across a kill, bounded by
age and count, a damaged file set aside with a warning, one process per file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.follow_state import FollowStateError, ShownLog, default_state_dir, state_file_name, version_key
from services.wire import hit_pb2


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_what_was_recorded_is_there_after_reopening(tmp_path):
    path = tmp_path / "state" / "follow-FJI-cli.sqlite"
    with ShownLog(path) as log:
        log.add("h-1", "5")
        log.add("h-1", "5")  # recording twice changes nothing
        log.add("h-2", "7")
        assert len(log) == 2
    with ShownLog(path) as log:
        assert ("h-1", "5") in log and ("h-2", "7") in log
        assert ("h-1", "6") not in log  # another version of a hit shown before is news
        assert len(log) == 2


# A writer that records one pair after another and says so on stdout once add() has returned.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from services.follow_state import ShownLog
    log = ShownLog(Path(sys.argv[1]))
    i = 0
    while True:
        log.add(f"h-{i}", "1")
        print(i, flush=True)
        i += 1
    """
)


def test_a_process_killed_while_recording_leaves_every_record_it_finished_and_a_sound_file(tmp_path):
    path = tmp_path / "shown.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]
    )
    try:
        done = [int(writer.stdout.readline()) for _ in range(50)]
    finally:
        writer.send_signal(signal.SIGKILL)  # in the middle of some later add(): no close, no clean-up
        writer.wait(30)
    warnings: list[str] = []
    with ShownLog(path, warn=warnings.append) as log:
        assert warnings == []  # no damage: the half-made record is simply not there
        assert all((f"h-{i}", "1") in log for i in done)
        assert len(log) >= len(done)


def test_the_oldest_go_first_beyond_the_most_entries(tmp_path):
    clock = Clock()
    with ShownLog(tmp_path / "s.sqlite", max_entries=3, clock=clock) as log:
        for i in range(5):
            clock.now += 1
            log.add(f"h-{i}", "1")
        assert len(log) == 3
        assert [i for i in range(5) if (f"h-{i}", "1") in log] == [2, 3, 4]


def test_entries_older_than_the_days_kept_are_dropped(tmp_path):
    clock = Clock()
    path = tmp_path / "s.sqlite"
    with ShownLog(path, keep_days=7, clock=clock) as log:
        log.add("h-old", "1")
        clock.now += 6 * 86400
        log.add("h-recent", "1")
    clock.now += 2 * 86400  # h-old is 8 days old, h-recent 2
    with ShownLog(path, keep_days=7, clock=clock) as log:
        assert ("h-old", "1") not in log and ("h-recent", "1") in log
        assert len(log) == 1


@pytest.mark.parametrize("keep", [0.5, 100, 0])  # half the file, the first page and a bit, or nothing at all
def test_a_truncated_file_is_set_aside_with_a_clear_warning_and_a_new_one_works(tmp_path, keep):
    path = tmp_path / "follow-FJI-cli.sqlite"
    with ShownLog(path) as log:
        for i in range(300):  # a file of several pages
            log.add(f"hit-{i:060d}", "1")
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * keep) if isinstance(keep, float) else keep)

    warnings: list[str] = []
    with ShownLog(path, warn=warnings.append) as log:
        assert len(log) == 0
        log.add("h-new", "1")
    with ShownLog(path, warn=warnings.append) as log:
        assert ("h-new", "1") in log  # the new file is sound
    [warning] = warnings
    assert str(path) in warning and "damaged" in warning and "shown once more" in warning
    [aside] = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert aside.name in warning


def test_a_file_that_is_not_a_state_file_at_all_is_set_aside_too(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b'{"not": "sqlite"}\n' * 100)
    warnings: list[str] = []
    with ShownLog(path, warn=warnings.append) as log:
        log.add("h-1", "1")
    assert len(warnings) == 1 and "damaged" in warnings[0]


def test_a_second_process_on_the_same_file_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with ShownLog(path), pytest.raises(FollowStateError, match="in use by another process"):
        ShownLog(path)
    with ShownLog(path):  # free again once closed
        pass


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FollowStateError, match="cannot make its folder"):
        ShownLog(blocker / "sub" / "s.sqlite")


def test_in_memory_without_a_path(tmp_path):
    with ShownLog() as log:
        log.add("h-1", "1")
        assert ("h-1", "1") in log
    assert list(tmp_path.iterdir()) == []


def test_bounds_must_bound():
    with pytest.raises(ValueError):
        ShownLog(max_entries=0)
    with pytest.raises(ValueError):
        ShownLog(keep_days=0)


def test_a_version_is_its_number_or_for_older_copies_its_content():
    hit = hit_pb2.Hit(hit_id="h-1", version=42, score=0.5)
    assert version_key(hit) == "42"
    old = hit_pb2.Hit(hit_id="h-1", score=0.5)
    changed = hit_pb2.Hit(hit_id="h-1", score=0.6)
    assert version_key(old).startswith("fp:") and version_key(old) != version_key(changed)


def test_state_file_names_cannot_leave_their_folder(monkeypatch, tmp_path):
    assert state_file_name("fji", "cli") == "follow-FJI-cli.sqlite"
    assert state_file_name("FJI", "") == "follow-FJI.sqlite"  # the contact point: no reader name can make this
    for reader in ["../x", "CLI", "a/b", "-x", "x" * 33]:
        with pytest.raises(ValueError, match="reader must be"):
            state_file_name("FJI", reader)
    with pytest.raises(ValueError, match="member"):
        state_file_name("../FJI", "cli")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "apihub"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path(os.path.expanduser("~")) / ".local" / "state" / "apihub"

"""The watchlist matcher of another git ref, timed in the same run as the working tree's (screening --baseline).

The machine is shared and noisy, so a speed target stated against an earlier matcher ("at least 0.7× today's")
is judged on a ratio measured in one run, on the same list and the same travellers, with the two matchers'
rounds interleaved. The earlier matcher cannot be imported beside the working tree's (both are the package
`services`), so it runs in a subprocess:

    checkout(ref)   a detached git worktree of REF in a temporary directory (`git -C <repo root> worktree add
                    --detach`), removed when the block ends, also on error
    Baseline        this file run as a script by the same interpreter with PYTHONPATH=<worktree> (and -P, so
                    the script's own directory is not on sys.path): it refuses to run unless `services` comes
                    from the worktree. It reads the list (a serialised delivery_pb2.Watchlist) and the traveller
                    frame (parquet: the columns WatchlistStore.matches reads, TRAVELLER_COLUMNS) from temporary
                    files, builds its own WatchlistStore (its own name keys, its own index), times the index
                    build, then times one `store.matches(frame)` at its own default threshold each time the
                    caller asks, so the caller interleaves its rounds with the baseline's.

The subprocess speaks JSON lines on stdout: first {"ready": true, ...} (where services came from, entries,
travellers, load_s, index_build_s, threshold, review_threshold, matcher_version), then one {"seconds", "matches"}
per "time" line read on stdin, and on "quit" (or end of input) {"done": true, "rounds": [...], "best_s",
"matches"}. A problem is one {"error": "..."} line and a non-zero exit.

    printf 'time\\ntime\\n' | PYTHONPATH=<worktree> python -P benchmarks/screening_baseline.py \\
        --root <worktree> --watchlist list.pb --travellers travellers.parquet

Only the standard library is imported at the top of this file: the parent imports it beside the working tree's
services, the child before it has checked where services comes from.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()

# What WatchlistStore.matches reads of a traveller frame ("documents" is optional).
TRAVELLER_COLUMNS = ("manifest_index", "traveller_index", "surname_key", "given_key", "dob", "documents")


# -- parent side ------------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def resolve(ref: str, repo: Path = ROOT) -> str:
    """The commit a ref names (RuntimeError if it names none)."""
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RuntimeError as e:
        raise RuntimeError(f"{ref!r} names no commit of {repo}") from e


@contextlib.contextmanager
def checkout(ref: str, repo: Path = ROOT) -> Iterator[Path]:
    """A detached worktree of ref in a fresh temporary directory, removed afterwards (also on error)."""
    commit = resolve(ref, repo)
    path = Path(tempfile.mkdtemp(prefix="apihub-baseline-"))
    added = False
    try:
        _git(repo, "worktree", "add", "--detach", str(path), commit)
        added = True
        yield path
    finally:
        try:
            if added:
                _git(repo, "worktree", "remove", "--force", str(path))
        finally:
            shutil.rmtree(path, ignore_errors=True)


class Baseline:
    """One list and one traveller frame screened by the matcher of a worktree, in a subprocess (see above).

    with Baseline(tree, watchlist_bytes, frame) as child:
        child.info           the "ready" line: where services came from, index build time, threshold, ...
        child.time_round()   one timed matches() in the subprocess: {"seconds", "matches"}
        child.close()        the "done" line: every round, the best
    """

    def __init__(self, tree: Path, watchlist: bytes, travellers: Any, timeout: float | None = 3600.0) -> None:
        self.tree = Path(tree).resolve()
        self.timeout = timeout
        self._watchlist = watchlist
        self._travellers = travellers.select([c for c in TRAVELLER_COLUMNS if c in travellers.columns])
        self._dir: Path | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self.info: dict = {}
        self.done: dict | None = None

    def __enter__(self) -> Baseline:
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    def _start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="apihub-baseline-data-"))
        watchlist, travellers = self._dir / "watchlist.pb", self._dir / "travellers.parquet"
        watchlist.write_bytes(self._watchlist)
        self._travellers.write_parquet(travellers)
        self._watchlist, self._travellers = b"", None  # the files hold them now
        self._stderr = (self._dir / "stderr.txt").open("w+")
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        env.pop("PYTHONHOME", None)
        command = [sys.executable, "-P", str(SCRIPT), "--root", str(self.tree)]
        command += ["--watchlist", str(watchlist), "--travellers", str(travellers)]
        self._process = subprocess.Popen(
            command,
            cwd=self.tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.info = self._read("ready")

    def _read(self, expected: str | None) -> dict:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        reply: dict = {}
        if line:
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                reply = {"error": f"unreadable line from the baseline subprocess: {line.strip()[:300]}"}
        if not line or "error" in reply or (expected and not reply.get(expected)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            detail = reply.get("error") or "it stopped without an answer"
            raise RuntimeError(f"baseline subprocess ({self.tree}): {detail}{self._tail()}")
        return reply

    def _tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read().strip()
        return f"\n--- its stderr (last lines) ---\n{chr(10).join(text.splitlines()[-20:])}" if text else ""

    def _send(self, command: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        except BrokenPipeError as e:
            raise RuntimeError(f"baseline subprocess ({self.tree}) is gone{self._tail()}") from e

    def time_round(self) -> dict:
        """One timed matches() of the whole frame in the subprocess: {"seconds": float, "matches": int}."""
        self._send("time")
        return self._read("seconds")

    def close(self) -> dict:
        """Ends the subprocess; its summary ({"done": true, "rounds", "best_s", "matches"})."""
        if self.done is None:
            self._send("quit")
            self.done = self._read("done")
            assert self._process is not None
            self._process.wait(timeout=self.timeout)
        return self.done

    def _cleanup(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(OSError):
                if self._process.stdin:
                    self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                if stream:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._stderr is not None:
            self._stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


# -- child side (this file run as a script in the worktree's environment) ----------------------------------------


def _emit(payload: dict) -> None:
    print(json.dumps(payload), flush=True)


def serve(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the watchlist matcher of a worktree (see the docstring).")
    parser.add_argument("--root", type=Path, required=True, help="the worktree services must be imported from")
    parser.add_argument("--watchlist", type=Path, required=True, help="a serialised delivery_pb2.Watchlist")
    parser.add_argument("--travellers", type=Path, required=True, help="the traveller frame (parquet)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        import services
    except ImportError as e:
        _emit({"error": f"cannot import services ({e}); sys.path: {sys.path}"})
        return 2
    origin = Path(services.__file__).resolve()
    if root not in origin.parents:
        _emit(
            {
                "error": f"services was imported from {origin}, not from the worktree {root}: "
                f"set PYTHONPATH to the worktree (sys.path: {sys.path})"
            }
        )
        return 2

    import polars as pl

    from services.profiler import matching, watchlist
    from services.wire import delivery_pb2

    started = time.perf_counter()
    store = watchlist.WatchlistStore()
    store.apply(delivery_pb2.Watchlist.FromString(args.watchlist.read_bytes()))
    entries = store.entries.height
    frame = pl.read_parquet(args.travellers)
    # Refs from before the index columns were named manifest_index and traveller_index call them m and t.
    if "manifest_index" not in getattr(watchlist, "EXACT_SCHEMA", {}):
        old_names = {"manifest_index": "m", "traveller_index": "t"}
        frame = frame.rename({new: old for new, old in old_names.items() if new in frame.columns})
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    store.index  # noqa: B018  (built once per list change, as in the profiler)
    index_s = time.perf_counter() - started
    _emit(
        {
            "ready": True,
            "services": str(origin.parent),
            "python": sys.executable,
            "entries": entries,
            "travellers": frame.height,
            "load_s": load_s,
            "index_build_s": index_s,
            "threshold": getattr(watchlist, "MATCH_THRESHOLD", None),
            "review_threshold": getattr(watchlist, "REVIEW_THRESHOLD", None),
            "matcher_version": getattr(matching, "MATCHER_VERSION", None),
        }
    )
    rounds: list[float] = []
    found = 0
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "time":
            _emit({"error": f"unknown command {command!r} (time, quit)"})
            return 2
        started = time.perf_counter()
        found = store.matches(frame).height  # its own default threshold
        rounds.append(time.perf_counter() - started)
        _emit({"seconds": rounds[-1], "matches": found})
    _emit({"done": True, "rounds": rounds, "best_s": min(rounds) if rounds else None, "matches": found})
    return 0


if __name__ == "__main__":
    sys.exit(serve())

"""Who this process is in its consumer groups: the name Kafka's static membership (group.instance.id) knows it by.

A group consumer with a name of its own is a static member: when its process dies and a new one joins under the
same name, the broker hands the newcomer the partitions of the old one at once, without a rebalance and without
waiting for the old session to time out. Two live processes under one name fence each other, so names are claimed:

- APIHUB_INSTANCE_ID set: that name, in every group the process joins (profiler and router are different groups);
- unset: ``<host>-<service>-<slot>``, the slot being the lowest number no other process of the same group on this
  host holds. A slot is a lock file (flock) in a per-user directory under the system's temporary directory; the
  kernel releases it when its process ends, however it ends, so the process that replaces a killed one (a
  supervisor's restart) finds the same slot free and takes the same name back.

Either way a name already held on this host is refused (ConfigError naming the setting); a lock directory that
cannot be used leaves the process a dynamic member (one warning), which still works, only with slower restarts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import socket
import tempfile
from pathlib import Path

from services.config import HubSettings
from services.errors import ConfigError

log = logging.getLogger(__name__)

# Kafka's own rule for group.instance.id: these characters, at most 249 of them.
VALID_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
# More processes of one group on one host than this is a mistake, not a deployment.
MAX_SLOTS = 256


def lock_dir() -> Path:
    """Where this user's processes claim their names: shared by every process of the user on this host."""
    return Path(tempfile.gettempdir()) / f"apihub-instances-{os.getuid()}"


class InstanceName:
    """A name claimed for one consumer group; ``release()`` (idempotent) lets another process take it."""

    def __init__(self, name: str | None, fd: int | None = None, path: Path | None = None) -> None:
        self.name = name
        self._fd = fd
        self._path = path

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Removed while still locked, so no lock file is left behind; _try_lock checks that the file it locked is
        # still the one at the path.
        with contextlib.suppress(OSError):
            self._path.unlink()
        os.close(fd)  # closing the descriptor releases the lock


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the exclusive lock of ``path``, or None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # its holder removed it while releasing it: lock the path's new file instead
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for an operator looking
    return fd


def _host() -> str:
    return _INVALID.sub("-", socket.gethostname()).strip("-.") or "host"


def claim_instance(settings: HubSettings, group: str, service: str) -> InstanceName:
    """This process's static-member name in ``group`` (see the module's docstring), held until released."""
    folder = lock_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.warning(
            "%s: no static group membership (cannot use %s: %s); restarts wait for a rebalance",
            service,
            folder,
            exc.strerror,
        )
        return InstanceName(None)
    group_part = _INVALID.sub("_", group)
    if settings.instance_id:
        path = folder / f"{group_part}.name.{settings.instance_id}.lock"
        fd = _try_lock(path)
        if fd is None:
            raise ConfigError(
                f"APIHUB_INSTANCE_ID={settings.instance_id}: another {service} process on this host already joined "
                f"group {group} under this name; give each process its own"
            )
        return InstanceName(settings.instance_id, fd, path)
    prefix = f"{_host()}-{service}"[:240]
    for slot in range(MAX_SLOTS):
        path = folder / f"{group_part}.slot.{slot}.lock"
        fd = _try_lock(path)
        if fd is not None:
            return InstanceName(f"{prefix}-{slot}", fd, path)
    raise ConfigError(f"more than {MAX_SLOTS} {service} processes of group {group} on this host")

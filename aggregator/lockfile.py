"""The daemon's lock: one daemon per SQLite database, an flock on a file beside it.

Apart from the daemon so that ``status`` can read it without importing the scheduler's shell.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.errors import AggregatorError
from aggregator.store import lock_path as _engine_lock_path
from aggregator.timeutil import to_iso


class DaemonRunning(AggregatorError):
    exit_code = 1


def lock_path(database_url: str) -> Path | None:
    """None where several daemons share the work (PostgreSQL)."""
    return _engine_lock_path(database_url)


@dataclass(frozen=True)
class LockInfo:
    pid: int
    started: str


class DaemonLock:
    """An flock on a file beside the database: released by the kernel when the process dies,
    so a killed daemon never leaves a stale lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, now: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_lock(self.path)
            who = f"PID {holder.pid}" if holder else "another process"
            raise DaemonRunning(
                f"another daemon ({who}) is running on this database ({self.path}); stop it "
                f"first{f' (kill {holder.pid})' if holder else ''} or use another --home") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {to_iso(now)}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def read_lock(path: Path) -> LockInfo | None:
    try:
        pid, started = path.read_text().split()[:2]
        return LockInfo(int(pid), started)
    except (OSError, ValueError):
        return None


def running_daemon(path: Path) -> LockInfo | None:
    """The daemon holding the lock, if one does (an unheld lock file is just left over)."""
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_lock(path)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

"""Inter-process turn-taking on a store file, and whether a run's writer process still exists.

A store opened with ``shared=True`` opens its DuckDB file only around each
operation, under an ``fcntl.flock`` on the sidecar ``STORE.lock`` file:
exclusive for a writer, shared for readers. DuckDB allows one writing process
per file (and no reader beside it), so the flock is what lets a long ``eval``
and ``results`` / ``report`` / a second ``eval`` take turns.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import threading
import time
from pathlib import Path

from sharpbench.store.errors import StoreError, StoreLockedError

__all__ = ["lock_path", "acquire", "release", "default_timeout", "writer_identity", "writer_alive"]

TIMEOUT_ENV = "SHARPBENCH_STORE_TIMEOUT"
_DEFAULT_TIMEOUT = 60.0

# In-process registry: a second Store object of this process on the same file reuses the lock
# (flock locks belong to open file descriptions, so a second fd would wait for the first).
_held: dict[str, list] = {}  # key -> [fd, exclusive, count]
_held_lock = threading.Lock()


def default_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return _DEFAULT_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None


def lock_path(path: Path) -> Path:
    return Path(f"{path}.lock")


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def _holders(fd: int) -> list[int]:
    """Pids holding a flock on the file behind ``fd`` (Linux /proc/locks; [] elsewhere)."""
    try:
        ino = os.fstat(fd).st_ino
        with open("/proc/locks") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].endswith(f":{ino}"):
            try:
                pid = int(parts[4])
            except ValueError:
                continue
            if pid != os.getpid() and pid not in pids:
                pids.append(pid)
    return pids


def acquire(path: Path, *, exclusive: bool, timeout: float, told: float | None = None) -> str | None:
    """Take the store's lock (waiting up to ``timeout`` s); returns a token for :func:`release`.

    None when no lock file can be made (read-only folder) for a reader: nobody can write there.
    ``told``: the wait to name in the error (the caller's whole timeout, when ``timeout`` is what is left).
    """
    key = _key(path)
    with _held_lock:
        entry = _held.get(key)
        if entry is not None:
            if exclusive and not entry[1]:
                raise StoreError(
                    f"store {path} is being read elsewhere in this process; cannot write to it meanwhile"
                )
            entry[2] += 1
            return key
    lp = lock_path(path)
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if not exclusive and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return None
        raise StoreError(f"cannot create the lock file {lp} of store {path}: {exc.strerror}") from exc
    import fcntl

    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pids = _holders(fd)
                os.close(fd)
                who = f"pid {', '.join(map(str, pids))}" if pids else "unknown pid"
                raise StoreLockedError(
                    f"store {path} is in use by another process ({who}) and stayed locked for more than "
                    f"{timeout if told is None else told:g} s; wait for it to finish, stop it, set {TIMEOUT_ENV} to wait longer, "
                    "or pass another --store"
                ) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)
    with _held_lock:
        _held[key] = [fd, exclusive, 1]
    return key


def release(token: str | None) -> None:
    if token is None:
        return
    with _held_lock:
        entry = _held.get(token)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] > 0:
            return
        del _held[token]
    os.close(entry[0])  # closing the descriptor drops the flock


# ----------------------------------------------------------- writer identity
def _start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot, Linux), -1 for a zombie, None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields:
        return None
    if fields[0] in ("Z", "X"):
        return -1
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def writer_identity() -> tuple[int, str, int | None]:
    """(pid, host, process start ticks) recorded in a run row by the process writing it."""
    pid = os.getpid()
    return pid, socket.gethostname(), _start_ticks(pid)


def writer_alive(pid, host, start) -> bool | None:
    """Whether a run's writer still exists: True, False, or None (another host: cannot tell)."""
    if pid is None:
        return False  # written by a sharpbench that held the file for the whole run; we opened it
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if host is not None and str(host) != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _start_ticks(pid)
    if now == -1:
        return False
    if start is not None and now is not None:
        try:
            return int(start) == now  # same pid, other process: the writer is gone
        except (TypeError, ValueError):
            return True
    return True

"""One holder per deployment for the background jobs (spool replay, labelling, outbreak
detection), however many worker processes or containers serve requests.

PostgreSQL: a session-level advisory lock held on a connection of its own (released by the
server when the holder's connection ends, so a crashed worker frees it). Embedded SQLite:
an exclusive ``flock`` on a file beside the database (released by the kernel when the
holder exits). Every worker asks again each round, so another takes over within one
interval when the holder goes away.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError


class JobLease(Protocol):
    def try_acquire(self) -> bool:
        """True while this process holds the lease (taking it if it is free); never blocks."""
        ...

    def release(self) -> None: ...


class FileLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None
        # Jobs ask from several threads: a second descriptor would find its own lock taken.
        self._guard = threading.Lock()

    def try_acquire(self) -> bool:
        with self._guard:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        if self._descriptor is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        with self._guard:
            if self._descriptor is not None:
                os.close(self._descriptor)  # closing the descriptor drops the flock
                self._descriptor = None


class AdvisoryLease:
    def __init__(self, engine: Engine, name: str = "lhs-background-jobs") -> None:
        self.engine = engine
        # Advisory locks are keyed by a 64-bit integer: a stable one from the name.
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._connection: Connection | None = None
        # Jobs ask from several threads; a Connection must be used by one at a time.
        self._guard = threading.Lock()

    def try_acquire(self) -> bool:
        with self._guard:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            # Re-entrant for the session that holds it; asking again also proves the
            # connection (and so the lock) is still alive.
            held = self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar()
            self._connection.commit()
            return bool(held)
        except SQLAlchemyError:
            self._release()
            return False

    def release(self) -> None:
        with self._guard:
            self._release()

    def _release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                # Invalidated, not returned to the pool: ending the session is what
                # releases its advisory locks.
                self._connection.invalidate()
                self._connection.close()
            self._connection = None


def job_lease(engine: Engine, data_dir: Path) -> JobLease:
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine)
    database = engine.url.database
    folder = Path(database).parent if database and database != ":memory:" else data_dir
    return FileLease(folder / "background-jobs.lock")

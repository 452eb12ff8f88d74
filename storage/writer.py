"""One writer thread per process for invocations and JWT ids, committing what has queued up together.

Concurrent requests each writing their own transaction contend for SQLite's single
write lock, and its busy handler backs off in sleeps of up to 100 ms: the tail latency
the clinician feels. Funnelling writes through one thread removes the contention, and
committing a batch at once (group commit) makes each write cheaper under load. Callers
still wait for their commit, so an answered call has been stored (or spooled).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from storage.repository import (
    AssignmentInput,
    IssuedCardInput,
    PredictionInput,
    ShadowInput,
    Store,
)
from storage.spool import Spool
from storage.tables import Invocation

logger = logging.getLogger(__name__)

MAX_BATCH = 100


@dataclass
class _Pending:
    invocation: Invocation
    cards: Sequence[IssuedCardInput]
    predictions: Sequence[PredictionInput]
    assignments: Sequence[AssignmentInput]
    shadows: Sequence[ShadowInput]
    done: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Claim:
    key: str
    expires_at: datetime
    done: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


class InvocationWriter:
    def __init__(self, store: Store, spool: Spool) -> None:
        self.store = store
        self.spool = spool
        self._queue: queue.Queue[_Pending | _Claim] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="lhs-invocation-writer", daemon=True)
        self._thread.start()

    async def write(
        self,
        invocation: Invocation,
        cards: Sequence[IssuedCardInput],
        predictions: Sequence[PredictionInput] = (),
        assignments: Sequence[AssignmentInput] = (),
        shadows: Sequence[ShadowInput] = (),
    ) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(invocation, cards, predictions, assignments, shadows, done, loop))
        await done

    async def claim_jti(self, key: str, expires_at: datetime) -> bool:
        """Record a JWT id; False if it was recorded before (a replay). Raises if the database fails."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        self._queue.put(_Claim(key, expires_at, done, loop))
        return await done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            claims = [item for item in batch if isinstance(item, _Claim)]
            if claims:
                self._claim(claims)
            invocations = [item for item in batch if isinstance(item, _Pending)]
            if invocations:
                self._commit(invocations)

    def _claim(self, claims: list[_Claim]) -> None:
        try:
            results: list[bool | BaseException] = list(
                self.store.claim_jtis([(c.key, c.expires_at) for c in claims])
            )
        except SQLAlchemyError as error:
            results = [error] * len(claims)
        for claim, result in zip(claims, results, strict=True):
            claim.loop.call_soon_threadsafe(_settle, claim.done, result)

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            self.store.record_invocations(
                [(p.invocation, p.cards, p.predictions, p.assignments, p.shadows) for p in batch]
            )
        except SQLAlchemyError:
            # Store each on its own, so one bad call cannot take the batch down with it;
            # what the database will not take waits in the spool.
            for pending in batch:
                try:
                    self.store.record_invocation(
                        pending.invocation,
                        pending.cards,
                        pending.predictions,
                        pending.assignments,
                        pending.shadows,
                    )
                except SQLAlchemyError:
                    logger.warning("invocation spooled: database unavailable")
                    self.spool.spool_invocation(
                        pending.invocation,
                        list(pending.cards),
                        list(pending.predictions),
                        list(pending.assignments),
                        list(pending.shadows),
                    )
        for pending in batch:
            pending.loop.call_soon_threadsafe(_resolve, pending.done)


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _settle(done: asyncio.Future[bool], result: bool | BaseException) -> None:
    if done.done():
        return
    if isinstance(result, BaseException):
        done.set_exception(result)
    else:
        done.set_result(result)

"""Background jobs of a running service, on one scheduler.

Jobs over the shared store (replaying the spool, labelling predictions whose outcome window
closed, outbreak detection) run in one process of the deployment at a time, the one holding
the lease; jobs that keep this process current (knowledge, experiments, shadows, signals,
model champions) run in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from cds_service.state import AppState, built_shadows
from evaluation.syndromic import MIN_CELL
from knowledge.signals import ActiveSignal
from learning.experiment_registry import active_experiments
from learning.labels import label_predictions
from learning.shadow_registry import active_shadow_runs
from learning.surveillance import detect
from point_of_care.catalogue import build_services
from point_of_care.site_settings import apply_settings, load_settings
from storage.lease import JobLease, job_lease

logger = logging.getLogger(__name__)

SIGNAL_HORIZON_DAYS = 28
"""Signals this recent are handed to rules (the longest activity a site may configure)."""


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Awaitable[None]]
    interval_seconds: float
    exclusive: bool
    """Runs only in the process that holds the deployment's lease."""
    first_after_seconds: float = 0.0


class Scheduler:
    """Runs each job every ``interval_seconds``; a job whose database is unavailable is
    postponed to its next turn, and no failure of one job stops the others."""

    def __init__(self, lease: JobLease, jobs: list[Job]) -> None:
        self.lease = lease
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._every(job), name=job.name) for job in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await run_in_threadpool(self.lease.release)

    async def _every(self, job: Job) -> None:
        await asyncio.sleep(job.first_after_seconds)
        while True:
            if not job.exclusive or await run_in_threadpool(self.lease.try_acquire):
                try:
                    await job.run()
                except SQLAlchemyError:
                    logger.warning("%s postponed: database unavailable", job.name)
                except Exception:
                    logger.exception("%s failed; it runs again at its next turn", job.name)
            await asyncio.sleep(job.interval_seconds)


def service_jobs(state: AppState) -> list[Job]:
    settings = state.settings

    async def keep_current() -> None:
        await refresh_knowledge(state)
        state.metrics.spooled_feedback.set(await run_in_threadpool(state.spool.pending))

    async def replay_spool() -> None:
        replayed = await run_in_threadpool(state.spool.drain, state.store)
        if replayed:
            logger.info("replayed %d spooled records", replayed)

    async def label_closed_windows() -> None:
        counts = await run_in_threadpool(label_predictions, state.store, datetime.now(UTC))
        if counts.labelled:
            logger.info("labelled %d predictions", counts.labelled)

    async def detect_outbreaks() -> None:
        syndromes = state.library.knowledge.syndromes
        today = datetime.now(UTC).date()
        run = await run_in_threadpool(
            lambda: detect(state.store, syndromes, today, incremental=True)
        )
        if run.stored:
            logger.info("%d new outbreak signals", run.stored)

    return [
        Job("knowledge refresh", keep_current, settings.spool_drain_interval, exclusive=False),
        Job("spool replay", replay_spool, settings.spool_drain_interval, exclusive=True),
        Job(
            "model refresh",
            lambda: refresh_models(state),
            settings.model_refresh_seconds,
            exclusive=False,
            first_after_seconds=settings.model_refresh_seconds,
        ),
        Job("labelling", label_closed_windows, settings.label_interval_seconds, exclusive=True),
        Job(
            "outbreak detection",
            detect_outbreaks,
            settings.surveillance_interval_seconds,
            exclusive=True,
            first_after_seconds=settings.surveillance_interval_seconds,
        ),
    ]


def lifespan(state: AppState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Load the champions before the first request, then run the jobs while the app runs."""

    @asynccontextmanager
    async def run(_: FastAPI) -> AsyncIterator[None]:
        # Everything built at start-up (knowledge, models, imported FHIR classes) lives as long
        # as the process: keep it out of the garbage collector's full passes, which otherwise
        # walk it again and again while requests allocate large JSON documents.
        gc.freeze()
        # A request allocates tens of thousands of short-lived containers (the parsed
        # prefetch); collecting every 700 allocations spends more time than it frees.
        gc.set_threshold(50_000, 20, 20)
        await refresh_models(state)
        scheduler = Scheduler(
            job_lease(state.store.engine, state.settings.data_dir), service_jobs(state)
        )
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()

    return run


async def refresh_models(state: AppState) -> None:
    """Follow each task's registry @champion (a promotion reaches every process)."""
    for model in state.models:
        if await run_in_threadpool(model.slot.refresh):
            state.metrics.model_swaps.labels(model.id).inc()


async def refresh_knowledge(state: AppState) -> None:
    """Pick up `lhs knowledge configure`, `lhs experiment start|stop` and `lhs shadow
    start|stop` changes (from any process) without a restart."""
    try:
        current = await run_in_threadpool(load_settings, state.store.engine)
        experiments = await run_in_threadpool(active_experiments, state.store)
        shadow_runs = await run_in_threadpool(active_shadow_runs, state.store)
        now = state.settings.evaluation_time or datetime.now(UTC)
        signals = await run_in_threadpool(
            state.store.surveillance.signals, now.date() - timedelta(days=SIGNAL_HORIZON_DAYS)
        )
    except SQLAlchemyError:
        return
    # Rules run without yielding to the event loop: no call sees a half-updated list. A
    # signal on fewer cases than may be shown reaches no card: the card would say that a
    # handful of people nearby were ill, and such small exceedances are where EARS raises
    # most of its false alarms.
    state.signals[:] = [
        ActiveSignal(s.syndrome, s.area, s.day, s.method) for s in signals if s.observed >= MIN_CELL
    ]
    new_runs = [run for run in shadow_runs.values() if run.id not in state.shadows]
    shadows = {i: shadow for i, shadow in state.shadows.items() if i in shadow_runs}
    if new_runs:
        shadows |= await run_in_threadpool(
            built_shadows, new_runs, state.library, state.settings, state.models
        )
    if (
        current != state.rule_settings
        or experiments != state.experiments
        or shadows.keys() != state.shadows.keys()
    ):
        # Built before the swap: another thread (a test, a metrics scrape) must never see the
        # services half-replaced while value sets are walked.
        services = build_services(
            apply_settings(state.library, current),
            state.models,
            experiments,
            tuple(shadows.values()),
        )
        state.services.clear()
        state.services.update(services)
        state.rule_settings.clear()
        state.rule_settings.update(current)
        state.experiments.clear()
        state.experiments.update(experiments)
        state.shadows.clear()
        state.shadows.update(shadows)
        logger.info("site rule settings, experiments and shadow runs applied")

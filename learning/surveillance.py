"""Population surveillance over the live feed, incrementally: each run classifies only the
feed resources that arrived since the previous run into syndrome cases, re-evaluates only
the area series those cases (or newly described patients) touch, and stores signals for
the recent alarms: EARS C1/C2/C3 on daily counts and the improved Farrington algorithm on
weekly counts where the feed holds the five years of history it needs.

A run re-evaluates every series instead (a full run) when it is the first, when the
syndrome definitions changed since the previous run (the whole feed is then classified
again), when the day changed, or when asked to. Signals are stored once (the same
syndrome, area, day and method are never raised twice), so runs may repeat as often as
data arrive, in several workers at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from evaluation.outbreak_detection import (
    FARRINGTON_WINDOW,
    FARRINGTON_YEARS_BACK,
    WEEKS_PER_YEAR,
    Alarm,
    ears_c1,
    ears_c2,
    ears_c3,
    farrington_flexible,
)
from evaluation.surveillance_report import SignalRow, SignalSeries, SurveillanceData
from evaluation.syndromic import UNKNOWN, CaseClassifier, CaseCount, area_series
from knowledge.syndromes import Syndrome
from storage.repository import Store
from storage.surveillance_store import CaseInput, SurveillanceStore
from storage.tables import SurveillanceRun, SurveillanceSignal

LOOKBACK_DAYS = 120
RECENT_DAYS = 7
"""Alarms on the last this many days become signals (older ones were a previous run's)."""
ARRIVAL_OVERLAP = timedelta(minutes=5)
"""A run classifies again what arrived this long before the previous run started: a write
that began before that run but committed after it is not missed (reclassifying is
idempotent)."""
DAILY_METHODS: dict[str, Callable[[Sequence[float]], list[Alarm]]] = {
    "ears-c1": ears_c1,
    "ears-c2": ears_c2,
    "ears-c3": ears_c3,
}
FARRINGTON = "farrington-flexible"
FARRINGTON_WEEKS = FARRINGTON_YEARS_BACK * (WEEKS_PER_YEAR + 1) + FARRINGTON_WINDOW + 1
"""Weeks of history a Farrington evaluation reads: five years of reference windows, with a
week to spare per year for ISO years with a week 53."""

Place = tuple[str, str]
"""(syndrome, area)."""


class CaseCounts(Protocol):
    """Where detection reads its counts from: the store's feed, or counts made over a Bulk
    Data export (population/) on either engine."""

    def case_counts(
        self, first: date, last: date, *, syndromes: Collection[str] | None = None
    ) -> list[CaseCount]: ...

    def first_case_days(self) -> dict[str, date]: ...


@dataclass(frozen=True)
class AreaSeries:
    syndrome: str
    area: str
    first: date
    counts: list[int]
    alarms: dict[str, list[Alarm]]
    step_days: int = 1
    """1 for daily counts, 7 for weekly ones (each step then ends 6 days after it starts)."""

    def day(self, index: int) -> date:
        """The last day of step ``index``."""
        return self.first + timedelta(days=index * self.step_days + self.step_days - 1)


@dataclass(frozen=True)
class DetectionRun:
    series: list[AreaSeries]
    """Daily series evaluated with EARS."""
    weekly: list[AreaSeries]
    """Weekly series evaluated with Farrington (those with enough history)."""
    raised: list[SurveillanceSignal]
    """Signals of this run's recent alarms (some may have been stored by an earlier run)."""
    stored: int
    classified: int
    """Feed resources classified into cases by this run."""
    incremental: bool


def definitions_hash(syndromes: Mapping[str, Syndrome]) -> str:
    """Identifies the syndrome definitions: cases classified under others are redone."""
    content = [syndromes[key].model_dump(mode="json") for key in sorted(syndromes)]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def classify_feed(
    store: SurveillanceStore, syndromes: Mapping[str, Syndrome], arrived_since: datetime | None
) -> tuple[int, set[tuple[str, str]]]:
    """Classify the feed resources that arrived since (all if None) into cases; how many
    were read, and (syndrome, patient key) of every case added or removed."""
    classified, touched = 0, set()
    case_of = CaseClassifier(syndromes)
    for batch in store.feed_batches(arrived_since):
        cases = [
            CaseInput(row.resource_key, syndrome, row.patient_key, row.started_at.date())
            for row in batch
            if row.started_at is not None
            for syndrome in case_of(row.resource_type, row.codes, row.value_codes)
        ]
        touched |= store.replace_cases([row.resource_key for row in batch], cases)
        classified += len(batch)
    return classified, touched


def _series(
    counts: Sequence[CaseCount],
    first: date,
    last: date,
    places: Collection[Place] | None,
    step_days: int = 1,
) -> dict[Place, list[int]]:
    """Each place's cases per step from first to last (of the given places only, if given)."""
    found = area_series(counts, first, last, step_days)
    return found if places is None else {p: v for p, v in found.items() if p in places}


def daily_series(
    store: CaseCounts,
    syndromes: Collection[str],
    first: date,
    last: date,
    places: Collection[Place] | None = None,
) -> list[AreaSeries]:
    """Each area's daily cases from first to last with its EARS alarms (of the given
    places only, if given)."""
    counts = store.case_counts(first, last, syndromes=_syndromes_of(syndromes, places))
    return [
        AreaSeries(
            syndrome,
            area,
            first,
            values,
            {n: method(values) for n, method in DAILY_METHODS.items()},
        )
        for (syndrome, area), values in _series(counts, first, last, places).items()
    ]


def weekly_series(
    store: CaseCounts,
    syndromes: Collection[str],
    today: date,
    places: Collection[Place] | None = None,
) -> list[AreaSeries]:
    """Farrington on the last complete ISO week (Monday to Sunday) up to today, for each
    area of a syndrome whose history in the feed covers the weeks the method reads.

    Weekly counts add the days' cases (a patient diagnosed on two days of a week counts
    twice, as visits do in syndromic surveillance)."""
    last = today - timedelta(days=today.isoweekday() % 7)  # the Sunday on or before today
    first = last - timedelta(weeks=FARRINGTON_WEEKS) + timedelta(days=1)
    history = store.first_case_days()
    # The feed's history of a syndrome starts with its first case: it must reach back into
    # the series' first week, or the weeks before it would be read as weeks without cases.
    covered = [
        s
        for s in _syndromes_of(syndromes, places)
        if s in history and history[s] < first + timedelta(weeks=1)
    ]
    if not covered:
        return []
    counts = store.case_counts(first, last, syndromes=covered)
    weeks = [(first + timedelta(weeks=i)).isocalendar().week for i in range(FARRINGTON_WEEKS)]
    return [
        AreaSeries(
            syndrome,
            area,
            first,
            values,
            {FARRINGTON: [farrington_flexible(values, weeks, FARRINGTON_WEEKS - 1)]},
            step_days=7,
        )
        for (syndrome, area), values in _series(counts, first, last, places, 7).items()
    ]


def _syndromes_of(syndromes: Collection[str], places: Collection[Place] | None) -> list[str]:
    wanted = set(syndromes) if places is None else {s for s, _ in places} & set(syndromes)
    return sorted(wanted)


def _touched_places(
    store: SurveillanceStore, touched: set[tuple[str, str]], patients: Sequence[str], first: date
) -> set[Place]:
    """The series to re-evaluate: those of the cases added or removed, and of the recent
    cases of patients whose area or age became known or changed."""
    touched = touched | store.cases_of_patients(patients, first)
    residents = store.residents([patient for _, patient in touched])
    return {
        (syndrome, residents.get(patient, (None, None))[0] or UNKNOWN)
        for syndrome, patient in touched
    }


def detect(
    store: Store,
    syndromes: Mapping[str, Syndrome],
    today: date,
    lookback_days: int = LOOKBACK_DAYS,
    *,
    incremental: bool = False,
    now: datetime | None = None,
    arrival_overlap: timedelta = ARRIVAL_OVERLAP,
) -> DetectionRun:
    """Classify what arrived, evaluate the series (only those with news if ``incremental``
    and the previous run was on the same day with the same definitions), store signals."""
    feed = store.surveillance
    started = now or datetime.now(UTC)
    definitions = definitions_hash(syndromes)
    previous = feed.last_run()
    # None: classify the whole feed (a first run, or new definitions).
    arrived_since = (
        previous.started_at - arrival_overlap
        if previous is not None and previous.definitions == definitions
        else None
    )
    classified, touched = classify_feed(feed, syndromes, arrived_since)
    if arrived_since is None:
        feed.keep_only_syndromes(list(syndromes))
    first = today - timedelta(days=lookback_days)
    places = (
        _touched_places(feed, touched, feed.patients_arrived(arrived_since), first)
        if incremental
        and arrived_since is not None
        and previous is not None
        and previous.through_day == today
        else None
    )
    series = daily_series(feed, syndromes, first, today, places)
    weekly = weekly_series(feed, syndromes, today, places)
    raised = recent_signals(series + weekly, today)
    stored = feed.record_signals(raised)
    feed.record_run(
        SurveillanceRun(
            started_at=started,
            through_day=today,
            definitions=definitions,
            incremental=places is not None,
            classified=classified,
            series=len(series) + len(weekly),
            signals=stored,
        )
    )
    return DetectionRun(series, weekly, raised, stored, classified, places is not None)


def recent_signals(series: Sequence[AreaSeries], today: date) -> list[SurveillanceSignal]:
    """Signals of the alarms on the last RECENT_DAYS days up to today."""
    recent = today - timedelta(days=RECENT_DAYS - 1)
    return [
        SurveillanceSignal(
            syndrome=s.syndrome,
            area=s.area,
            day=s.day(alarm.index),
            method=method,
            observed=alarm.observed,
            expected=alarm.expected,
            threshold=alarm.threshold,
            strength=alarm.statistic,
        )
        for s in series
        for method, alarms in s.alarms.items()
        for alarm in alarms
        if alarm.alarm and s.day(alarm.index) >= recent
    ]


def surveillance_report(
    store: Store, syndromes: Mapping[str, Syndrome], since: date, until: date
) -> SurveillanceData:
    """The period's signals (one row per syndrome, area and day) and the daily series of
    each area with one, over the detection window before the period's end."""
    feed = store.surveillance
    found = [s for s in feed.signals(since) if s.day <= until]
    methods: dict[tuple[str, str, date], list[str]] = {}
    for s in found:
        methods.setdefault((s.syndrome, s.area, s.day), []).append(s.method)
    rows = [
        SignalRow(syndrome, area, day, sorted(m)) for (syndrome, area, day), m in methods.items()
    ]
    places = {(r.syndrome, r.area) for r in rows}
    series = [
        SignalSeries(
            a.syndrome,
            a.area,
            a.first,
            a.counts,
            a.alarms["ears-c2"],
            sorted({r.day for r in rows if (r.syndrome, r.area) == (a.syndrome, a.area)}),
        )
        for a in daily_series(
            feed, list(syndromes), until - timedelta(days=LOOKBACK_DAYS), until, places
        )
    ]
    return SurveillanceData(rows, series)

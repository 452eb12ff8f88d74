"""Population surveillance over the live feed: daily case counts per syndrome and area,
EARS C1/C2/C3 on each area's series, and signals for the recent alarms.

Each run looks at a bounded window (``lookback_days`` up to ``today``), so its cost does not
grow with the feed's history; signals are stored once (the same syndrome, area, day and
method are never raised twice), so runs may repeat as often as data arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from cds_service.storage.repository import Store
from cds_service.storage.tables import SurveillanceSignal
from evaluation.outbreak_detection import Alarm, ears_c1, ears_c2, ears_c3
from evaluation.surveillance_report import SignalRow, SignalSeries, SurveillanceData
from evaluation.syndromic import FeedEvent, Resident, area_series, daily_counts
from knowledge.syndromes import Syndrome

LOOKBACK_DAYS = 120
RECENT_DAYS = 7
"""Alarms on the last this many days become signals (older ones were a previous run's)."""
METHODS: dict[str, Callable[[Sequence[float]], list[Alarm]]] = {
    "ears-c1": ears_c1,
    "ears-c2": ears_c2,
    "ears-c3": ears_c3,
}


@dataclass(frozen=True)
class AreaSeries:
    syndrome: str
    area: str
    first: date
    counts: list[int]
    alarms: dict[str, list[Alarm]]

    def day(self, index: int) -> date:
        return self.first + timedelta(days=index)


@dataclass(frozen=True)
class DetectionRun:
    series: list[AreaSeries]
    raised: list[SurveillanceSignal]
    """Signals of this run's recent alarms (some may have been stored by an earlier run)."""
    stored: int


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def area_series_from_store(
    store: Store, syndromes: Mapping[str, Syndrome], first: date, last: date
) -> list[AreaSeries]:
    rows = store.feed_events(_midnight(first), _midnight(last + timedelta(days=1)))
    events = [
        FeedEvent(r.patient_key, r.started_at.date(), r.resource_type, r.codes, r.value_codes)
        for r in rows
        if r.started_at is not None
    ]
    residents = {
        key: Resident(area, year)
        for key, (area, year) in store.residents([e.patient_key for e in events]).items()
    }
    counts = daily_counts(events, residents, syndromes)
    return [
        AreaSeries(
            syndrome,
            area,
            first,
            values,
            {name: method(values) for name, method in METHODS.items()},
        )
        for (syndrome, area), values in area_series(counts, first, last).items()
    ]


def detect(
    store: Store,
    syndromes: Mapping[str, Syndrome],
    today: date,
    lookback_days: int = LOOKBACK_DAYS,
) -> DetectionRun:
    series = area_series_from_store(store, syndromes, today - timedelta(days=lookback_days), today)
    recent = today - timedelta(days=RECENT_DAYS - 1)
    raised = [
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
    return DetectionRun(series, raised, store.record_signals(raised))


def surveillance_report(
    store: Store, syndromes: Mapping[str, Syndrome], since: date, until: date
) -> SurveillanceData:
    """The period's signals (one row per syndrome, area and day) and the series of each
    area with one, over the detection window before the period's end."""
    found = [s for s in store.signals(since) if s.day <= until]
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
        for a in area_series_from_store(
            store, syndromes, until - timedelta(days=LOOKBACK_DAYS), until
        )
        if (a.syndrome, a.area) in places
    ]
    return SurveillanceData(rows, series)

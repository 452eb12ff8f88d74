"""The store's part of population surveillance: the feed classified into syndrome cases,
cases counted by area, birth year and day in the database, detection runs and signals."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from evaluation.syndromic import CaseCount
from storage.tables import (
    OutcomeEvent,
    SurveillanceRun,
    SurveillanceSignal,
    SyndromeCase,
)

FEED_TYPES = ("Condition", "Observation")
"""The feed resources that can be cases (diagnoses and test results)."""
_IN_CHUNK = 900
"""Keys per IN list: under SQLite's oldest limit of 999 bound parameters."""


@dataclass(frozen=True)
class FeedRow:
    resource_key: str
    patient_key: str
    resource_type: str
    codes: list[str]
    value_codes: list[str]
    started_at: datetime | None


@dataclass(frozen=True)
class CaseInput:
    resource_key: str
    syndrome: str
    patient_key: str
    day: date


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


class SurveillanceStore:
    def __init__(self, engine: Engine, insert: Callable[[Any], Any]) -> None:
        self.engine = engine
        self._insert = insert

    # --- the feed, classified --------------------------------------------------------------

    def feed_batches(
        self, arrived_since: datetime | None, batch_size: int = 20_000
    ) -> Iterator[list[FeedRow]]:
        """Conditions and Observations of the feed that arrived (or were corrected) at or
        after ``arrived_since`` (all if None), in storage order, a batch at a time."""
        last_id = 0
        while True:
            query = (
                select(
                    OutcomeEvent.id,
                    OutcomeEvent.resource_key,
                    OutcomeEvent.patient_key,
                    OutcomeEvent.resource_type,
                    OutcomeEvent.codes,
                    OutcomeEvent.value_codes,
                    OutcomeEvent.started_at,
                )
                .where(
                    col(OutcomeEvent.resource_type).in_(FEED_TYPES),
                    col(OutcomeEvent.id) > last_id,
                )
                .order_by(col(OutcomeEvent.id))
                .limit(batch_size)
            )
            if arrived_since is not None:
                query = query.where(col(OutcomeEvent.received_at) >= arrived_since)
            with Session(self.engine) as session:
                rows = session.exec(query).all()
            if not rows:
                return
            last_id = rows[-1][0]
            yield [FeedRow(*row[1:]) for row in rows]

    def replace_cases(
        self, resource_keys: Sequence[str], cases: Sequence[CaseInput]
    ) -> set[tuple[str, str]]:
        """Make ``cases`` the cases of these feed resources (a correction may have changed
        them); (syndrome, patient key) of every case removed or added."""
        touched: set[tuple[str, str]] = {(c.syndrome, c.patient_key) for c in cases}
        with self.engine.begin() as connection:
            for keys in _chunks(resource_keys):
                touched.update(
                    connection.execute(
                        select(SyndromeCase.syndrome, SyndromeCase.patient_key).where(
                            col(SyndromeCase.resource_key).in_(keys)
                        )
                    ).all()
                )
                connection.execute(
                    delete(SyndromeCase).where(col(SyndromeCase.resource_key).in_(keys))
                )
            if cases:
                # Another worker's run may classify the same resources at the same time.
                connection.execute(
                    self._insert(SyndromeCase).on_conflict_do_nothing(
                        index_elements=["resource_key", "syndrome"]
                    ),
                    [vars(c) for c in cases],
                )
        return touched

    def keep_only_syndromes(self, syndromes: Collection[str]) -> None:
        """Drop the cases of syndromes no longer defined."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(SyndromeCase).where(col(SyndromeCase.syndrome).not_in(list(syndromes)))
            )

    def first_case_days(self) -> dict[str, date]:
        """The first day with a case of each syndrome: where the feed's history begins."""
        query = select(SyndromeCase.syndrome, func.min(SyndromeCase.day)).group_by(
            col(SyndromeCase.syndrome)
        )
        with Session(self.engine) as session:
            return dict(session.exec(query).all())

    # --- counting ----------------------------------------------------------------------------

    def case_counts(
        self,
        first: date,
        last: date,
        *,
        syndromes: Collection[str] | None = None,
        by_birth_year: bool = False,
    ) -> list[CaseCount]:
        """Distinct patients per syndrome, area (of their Patient resource) and day in
        [first, last], and per birth year if asked: counted by the database."""
        patient = aliased(OutcomeEvent)
        groups: list[Any] = [SyndromeCase.syndrome, patient.area, SyndromeCase.day]
        if by_birth_year:
            groups.append(patient.birth_year)
        query = (
            select(*groups, func.count(func.distinct(SyndromeCase.patient_key)))
            .select_from(SyndromeCase)
            .outerjoin(
                patient,
                and_(
                    col(patient.patient_key) == col(SyndromeCase.patient_key),
                    col(patient.resource_type) == "Patient",
                ),
            )
            .where(col(SyndromeCase.day) >= first, col(SyndromeCase.day) <= last)
            .group_by(*groups)
        )
        if syndromes is not None:
            query = query.where(col(SyndromeCase.syndrome).in_(list(syndromes)))
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        if by_birth_year:
            return [CaseCount(s, area, day, n, year) for s, area, day, year, n in rows]
        return [CaseCount(s, area, day, n) for s, area, day, n in rows]

    def patients_arrived(self, since: datetime) -> list[str]:
        """Patients whose Patient resource (area, birth year) arrived or changed since."""
        query = select(OutcomeEvent.patient_key).where(
            OutcomeEvent.resource_type == "Patient", col(OutcomeEvent.received_at) >= since
        )
        with Session(self.engine) as session:
            return sorted(set(session.exec(query).all()))

    def cases_of_patients(self, patient_keys: Sequence[str], first: date) -> set[tuple[str, str]]:
        """(syndrome, patient key) of these patients' cases from ``first`` on."""
        found: set[tuple[str, str]] = set()
        with Session(self.engine) as session:
            for keys in _chunks(patient_keys):
                query = select(SyndromeCase.syndrome, SyndromeCase.patient_key).where(
                    col(SyndromeCase.patient_key).in_(keys), col(SyndromeCase.day) >= first
                )
                found.update(session.exec(query).all())
        return found

    def residents(self, patient_keys: Sequence[str]) -> dict[str, tuple[str | None, int | None]]:
        """Area and birth year of each patient the feed has described."""
        found: dict[str, tuple[str | None, int | None]] = {}
        with Session(self.engine) as session:
            for keys in _chunks(sorted(set(patient_keys))):
                query = select(
                    OutcomeEvent.patient_key, OutcomeEvent.area, OutcomeEvent.birth_year
                ).where(
                    OutcomeEvent.resource_type == "Patient",
                    col(OutcomeEvent.patient_key).in_(keys),
                )
                for key, area, birth_year in session.exec(query):
                    found[key] = (area, birth_year)
        return found

    # --- runs and signals --------------------------------------------------------------------

    def last_run(self) -> SurveillanceRun | None:
        query = select(SurveillanceRun).order_by(col(SurveillanceRun.id).desc()).limit(1)
        with Session(self.engine) as session:
            return session.exec(query).first()

    def record_run(self, run: SurveillanceRun) -> None:
        with Session(self.engine) as session:
            session.add(run)
            session.commit()

    def record_signals(self, signals: Sequence[SurveillanceSignal]) -> int:
        """Store new signals; one already raised (same syndrome, area, day, method) is kept."""
        if not signals:
            return 0
        identity = ("syndrome", "area", "day", "method")
        days = {s.day for s in signals}
        with self.engine.begin() as connection:
            existing = set(
                connection.execute(
                    select(*(getattr(SurveillanceSignal, name) for name in identity)).where(
                        col(SurveillanceSignal.day).in_(days)
                    )
                ).all()
            )
            rows = [
                s.model_dump(exclude={"id"})
                for s in signals
                if tuple(getattr(s, name) for name in identity) not in existing
            ]
            if rows:
                # A concurrent run may have stored some since: those are skipped, not doubled.
                connection.execute(
                    self._insert(SurveillanceSignal).on_conflict_do_nothing(
                        index_elements=list(identity)
                    ),
                    rows,
                )
        return len(rows)

    def signals(self, since: date | None = None) -> list[SurveillanceSignal]:
        query = select(SurveillanceSignal).order_by(
            col(SurveillanceSignal.day).desc(), col(SurveillanceSignal.syndrome)
        )
        if since is not None:
            query = query.where(col(SurveillanceSignal.day) >= since)
        with Session(self.engine) as session:
            return list(session.exec(query))

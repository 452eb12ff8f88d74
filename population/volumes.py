"""Regional volumes over a Bulk Data export on the engine asked for, held as the counts
detection reads (EARS and Farrington run on these aggregated series, unchanged)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import chain
from pathlib import Path
from typing import Any

from evaluation.syndromic import CaseCount
from fhir_client.ndjson import ndjson_files, read_resources
from knowledge.syndromes import Syndrome
from population.case_counts import SURVEILLANCE_TYPES, count_cases
from population.engines import Engine


@dataclass(frozen=True)
class CountedCases:
    """Counts made over an export, answering the queries detection asks of the store."""

    counts: list[CaseCount]

    def case_counts(
        self, first: date, last: date, *, syndromes: Collection[str] | None = None
    ) -> list[CaseCount]:
        return [
            c
            for c in self.counts
            if first <= c.day <= last and (syndromes is None or c.syndrome in syndromes)
        ]

    def first_case_days(self) -> dict[str, date]:
        first: dict[str, date] = {}
        for c in self.counts:
            first[c.syndrome] = min(c.day, first.get(c.syndrome, c.day))
        return first


def case_volumes(
    engine: Engine,
    folder: Path,
    syndromes: Mapping[str, Syndrome],
    secret: bytes,
    *,
    spark_master: str,
) -> CountedCases:
    """Distinct patients per syndrome, area and day over the export in ``folder``."""
    if engine is Engine.SPARK:
        from population.spark_counts import spark_case_counts
        from population.spark_session import spark_session

        with spark_session(spark_master) as spark:
            return CountedCases(spark_case_counts(spark, folder, syndromes, secret))
    return CountedCases(count_cases(feed_resources(folder), syndromes, secret))


def feed_resources(folder: Path) -> Iterator[dict[str, Any]]:
    """The export's Patients, Conditions and Observations, one at a time."""
    return chain.from_iterable(
        read_resources(path) for path in ndjson_files(folder, SURVEILLANCE_TYPES)
    )

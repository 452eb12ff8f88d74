"""The cost of population surveillance for one million observations on one machine.

A seeded synthetic feed (default 1,000,000 Conditions and Observations over 2,000 days,
from 200,000 patients in 50 ZIP3 areas, a tenth of them cases of a syndrome) is stored in a
real store (a temporary SQLite database, or ``--database-url``) the way the outcomes
endpoint stores it. Then, as the service does it:

* a full detection run: every observation classified into syndrome cases, cases counted
  per syndrome, area and day by the database, EARS C1/C2/C3 on every area's daily series
  and Farrington on every weekly one (the feed holds the five years it needs);
* one more day of data arrives, and an incremental run classifies only that day and
  re-evaluates only the series it touched.

The baseline, measured in the same run, is storing the feed itself (which the service
does whether or not surveillance runs): the ratios say what surveillance adds to that.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fhir_client.outcomes import OutcomeInput
from knowledge.library import KNOWLEDGE_DIR
from knowledge.syndromes import load_syndromes
from learning.surveillance import detect
from storage.db import create_db_engine
from storage.migrate import upgrade_database
from storage.repository import Store

SNOMED = "http://snomed.info/sct"
CASE_CODES = [
    f"{SNOMED}|95891005",
    f"{SNOMED}|6142004",
    f"{SNOMED}|25374005",
    f"{SNOMED}|840539006",
]
OTHER_CODES = [f"{SNOMED}|444814009", f"{SNOMED}|195662009", f"{SNOMED}|10509002"]
PATIENTS = 200_000
AREAS = 50
DAYS = 2_000
BATCH = 5_000


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def patients() -> list[OutcomeInput]:
    rng = random.Random(1)
    return [
        OutcomeInput(
            _key(f"Patient/{i}"),
            _key(f"p{i}"),
            "Patient",
            "",
            None,
            [],
            None,
            None,
            None,
            None,
            _key(f"v{i}"),
            area=f"{10 + rng.randrange(AREAS):03d}",
            birth_year=rng.randrange(1930, 2026),
        )
        for i in range(PATIENTS)
    ]


def observations(n: int, seed: int, first_day: date, days: int) -> Iterator[list[OutcomeInput]]:
    """Conditions dated over ``days`` days from first_day, a batch at a time."""
    rng = random.Random(seed)
    batch: list[OutcomeInput] = []
    for i in range(n):
        day = first_day + timedelta(days=rng.randrange(days))
        onset = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
        code = rng.choice(CASE_CODES if rng.random() < 0.1 else OTHER_CODES)
        batch.append(
            OutcomeInput(
                _key(f"Condition/{seed}-{i}"),
                _key(f"p{rng.randrange(PATIENTS)}"),
                "Condition",
                "active",
                None,
                [code],
                onset,
                None,
                None,
                None,
                _key(f"c{seed}-{i}"),
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", help="Default: a temporary SQLite database.")
    args = parser.parse_args()
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    today = date(2026, 3, 31)
    first_day = today - timedelta(days=DAYS)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_database(url)
        store = Store(create_db_engine(url))
        store.record_outcomes(patients())

        started = time.perf_counter()
        for batch in observations(args.observations, args.seed, first_day, DAYS):
            store.record_outcomes(batch)
        storing = time.perf_counter() - started

        started = time.perf_counter()
        full = detect(store, syndromes, today)
        full_seconds = time.perf_counter() - started

        one_day = args.observations // DAYS
        started = time.perf_counter()
        for batch in observations(one_day, args.seed + 1, today, 1):
            store.record_outcomes(batch)
        storing_day = time.perf_counter() - started
        started = time.perf_counter()
        # A run only re-reads what arrived since the previous one started, less an overlap
        # against slow commits; the bench's previous run is seconds old, so no overlap.
        incremental = detect(
            store, syndromes, today, incremental=True, arrival_overlap=timedelta(0)
        )
        incremental_seconds = time.perf_counter() - started
        store.engine.dispose()

    dialect = url.split(":", 1)[0]
    print(
        f"{args.observations:,} observations over {DAYS} days, {PATIENTS:,} patients in {AREAS} "
        f"areas ({dialect})"
    )
    print(f"baseline: storing the feed                {storing:8.2f} s")
    print(
        f"full run: classify {full.classified:,}, {len(full.series)} daily + {len(full.weekly)} "
        f"weekly series, {len(full.raised)} alarms   {full_seconds:8.2f} s   ratio to storing "
        f"{full_seconds / storing:5.2f}"
    )
    print(
        f"one more day: storing {one_day:,} observations {storing_day:8.2f} s; incremental run "
        f"(classify {incremental.classified:,}, {len(incremental.series)} daily + "
        f"{len(incremental.weekly)} weekly series) {incremental_seconds:8.2f} s   ratio to the "
        f"full run {incremental_seconds / full_seconds:5.3f}"
    )
    per_million = (storing + full_seconds) * 1e6 / args.observations
    print(f"per million observations, stored and surveilled from scratch: {per_million:.1f} s")


if __name__ == "__main__":
    main()

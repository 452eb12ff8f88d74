"""The cost of population surveillance for one million observations on one machine.

A seeded synthetic feed (default 1,000,000 Conditions and Observations over a year, from
200,000 patients in 50 ZIP3 areas, a tenth of them cases of a syndrome) is counted per
syndrome, area, age band and day, and every area series is run through EARS C1, C2 and C3.
The baseline, measured in the same run, is one plain pass that counts the observations per
day: the ratios say what the syndrome matching, grouping and detection cost beyond reading
each observation once.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import date, timedelta

from cds_service.surveillance import METHODS
from evaluation.syndromic import FeedEvent, Resident, area_series, daily_counts
from knowledge.library import KNOWLEDGE_DIR
from knowledge.syndromes import load_syndromes

SNOMED = "http://snomed.info/sct"
CASE_CODES = [
    f"{SNOMED}|95891005",
    f"{SNOMED}|6142004",
    f"{SNOMED}|25374005",
    f"{SNOMED}|840539006",
]
OTHER_CODES = [f"{SNOMED}|444814009", f"{SNOMED}|195662009", f"{SNOMED}|10509002"]


def feed(n: int, seed: int) -> tuple[list[FeedEvent], dict[str, Resident]]:
    rng = random.Random(seed)
    residents = {
        f"p{i}": Resident(f"{rng.randrange(10, 60):03d}", rng.randrange(1930, 2026))
        for i in range(200_000)
    }
    keys = list(residents)
    first = date(2026, 1, 1)
    events = [
        FeedEvent(
            rng.choice(keys),
            first + timedelta(days=rng.randrange(365)),
            "Condition",
            [rng.choice(CASE_CODES if rng.random() < 0.1 else OTHER_CODES)],
        )
        for _ in range(n)
    ]
    return events, residents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    events, residents = feed(args.observations, args.seed)

    started = time.perf_counter()
    per_day = Counter(e.day for e in events)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    counts = daily_counts(events, residents, syndromes)
    counting = time.perf_counter() - started

    started = time.perf_counter()
    first, last = min(per_day), max(per_day)
    places = area_series(counts, first, last)
    alarms = sum(
        a.alarm for series in places.values() for method in METHODS.values() for a in method(series)
    )
    detection = time.perf_counter() - started

    n = len(events)
    print(f"{n:,} observations, {len(counts):,} non-empty cells, {len(places)} area series")
    print(f"baseline (one pass, count per day): {baseline:7.2f} s")
    print(
        f"counting (syndromes x area x age x day): {counting:7.2f} s   ratio {counting / baseline:6.1f}"
    )
    print(
        f"detection (EARS C1/C2/C3, every series): {detection:7.2f} s   ratio {detection / baseline:6.1f}"
    )
    print(f"per million observations: {(counting + detection) * 1e6 / n:.1f} s; {alarms} alarms")


if __name__ == "__main__":
    main()

"""Population scale: resources per second of the readmission features and of syndrome
counting, in this process and on Spark (``local[2]`` unless LHS_SPARK_MASTER says
otherwise), at 10k, 100k and 1M resources.

Each size is a Bulk Data export made of the synthetic patients, copied and re-identified
until it holds the size asked (bench/bulk_sample.py), a twentieth of it case reports (so
that there are cases to count). Timed, on the same export:

* features: the readmission cohort (grouping the NDJSON by patient, index discharges,
  labels, features), rate = resources in the export per second;
* counting: classifying the Patients, Conditions and Observations into syndrome cases and
  counting distinct patients per syndrome, area and day, rate = those resources per second.

The Spark session is started before the timings (its start is printed apart): a service
would keep one. Printed: a table of rates, and where Spark overtakes this process.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bench.bulk_sample import write_bulk_export, write_case_reports
from cds_service.config import Settings, default_patients
from fhir_client.bundles import patient_bundles
from fhir_client.ndjson import ndjson_files, read_lines
from fhir_client.patient_sources import patient_records
from knowledge.library import load_library
from knowledge.syndromes import load_syndromes
from models.cohort import cohort_from_records
from models.features import ReadmissionFeatures
from models.tasks import READMISSION_30D
from population.case_counts import SURVEILLANCE_TYPES, count_cases
from population.engines import Engine
from population.spark_cohort import spark_cohort
from population.spark_counts import spark_case_counts
from population.spark_session import spark_session
from population.volumes import feed_resources

SIZES = (10_000, 100_000, 1_000_000)
KEY = b"bench-scale-key-of-thirty-two-bytes"
TASKS = ("features", "counting")
COLUMNS = [f"{task} {engine}" for task in TASKS for engine in Engine]


def _rate(rows: int, run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return rows / (time.perf_counter() - started)


def make_export(folder: Path, size: int) -> tuple[int, int]:
    """An export of ``size`` resources; (all resources, those counting reads)."""
    reports = size // 20
    written = write_bulk_export(patient_bundles(default_patients()), folder, size - reports)
    written += write_case_reports(folder, reports, date(2026, 1, 1), 90)
    feed = sum(1 for path in ndjson_files(folder, SURVEILLANCE_TYPES) for _ in read_lines(path))
    return written, feed


def measure(spark: Any, size: int, knowledge: Path) -> dict[str, float]:
    """Resources per second of each task on each engine, on an export of ``size``."""
    extractor = ReadmissionFeatures(load_library())
    syndromes = load_syndromes(knowledge)
    with tempfile.TemporaryDirectory(prefix="lhs-bench-scale-") as scratch:
        folder = Path(scratch)
        resources, feed = make_export(folder, size)
        return {
            "features process": _rate(
                resources,
                lambda: cohort_from_records(
                    patient_records(folder), READMISSION_30D, extractor, KEY
                ),
            ),
            "features spark": _rate(
                resources, lambda: spark_cohort(spark, folder, READMISSION_30D, extractor, KEY)
            ),
            "counting process": _rate(
                feed, lambda: count_cases(feed_resources(folder), syndromes, KEY)
            ),
            "counting spark": _rate(feed, lambda: spark_case_counts(spark, folder, syndromes, KEY)),
        }


def crossing(sizes: Sequence[int], process: Sequence[float], spark: Sequence[float]) -> str:
    """Where Spark's rate overtakes this process's, interpolated on log scales."""
    ratios = [s / p for s, p in zip(spark, process, strict=True)]
    if ratios[0] >= 1:
        return f"Spark is faster from the smallest size ({sizes[0]:,})"
    for i in range(1, len(sizes)):
        if ratios[i] >= 1:
            a, b = math.log(ratios[i - 1]), math.log(ratios[i])
            x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
            at = math.exp(x0 + (0 - a) * (x1 - x0) / (b - a)) if b != a else sizes[i]
            return f"Spark overtakes this process at about {at:,.0f} resources"
    return (
        f"this process is faster at every size measured (Spark reaches {ratios[-1]:.2f}x "
        f"its rate at {sizes[-1]:,})"
    )


def table(sizes: Sequence[int], rates: Sequence[dict[str, float]]) -> str:
    """The rates (resources per second), and where the curves cross."""
    lines = [
        "resources/s  " + "".join(f"{c:>20}" for c in COLUMNS),
        *(
            f"{size:>11,}  " + "".join(f"{r[c]:>20,.0f}" for c in COLUMNS)
            for size, r in zip(sizes, rates, strict=True)
        ),
    ]
    for task in TASKS:
        process = [r[f"{task} process"] for r in rates]
        spark = [r[f"{task} spark"] for r in rates]
        lines.append(f"{task}: {crossing(sizes, process, spark)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    settings = Settings()
    started = time.perf_counter()
    with spark_session(settings.spark_master) as spark:
        print(f"Spark session on {settings.spark_master}: {time.perf_counter() - started:.1f} s")
        rates = []
        for size in args.sizes:
            rates.append(measure(spark, size, settings.knowledge_dir))
            print(f"{size:,} resources measured", flush=True)
    report = table(args.sizes, rates)
    print(report)
    return report


if __name__ == "__main__":
    main()

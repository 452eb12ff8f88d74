"""The readmission task's cohort on the engine asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir_client.patient_sources import patient_records
from models.cohort import Cohort, cohort_from_records
from models.features import ReadmissionFeatures
from models.tasks import PredictionTask
from population.engines import Engine


def task_cohort(
    engine: Engine,
    folder: Path,
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
    *,
    spark_master: str,
    progress: Callable[[int], Any] | None = None,
) -> Cohort:
    """The task's cohort from a folder of patient Bundles or Bulk Data NDJSON, on ``engine``
    (``progress`` is told how many records were read, in this process only)."""
    if engine is Engine.SPARK:
        from population.spark_cohort import spark_cohort
        from population.spark_session import spark_session

        with spark_session(spark_master) as spark:
            return spark_cohort(spark, folder, task, extractor, pseudonym_key)
    return cohort_from_records(
        patient_records(folder), task, extractor, pseudonym_key, progress=progress
    )

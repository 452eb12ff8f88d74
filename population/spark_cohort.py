"""The readmission cohort on Spark: each patient's part (index discharges, outcome, features)
is computed on an executor by ``models.cohort.patient_candidates``, the very function the
in-process cohort runs; the driver then assembles the parts as the in-process cohort does.
Only the small per-patient results travel back, never the records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.cohort import Cohort, assemble_cohort, patient_candidates
from models.features import ReadmissionFeatures
from models.tasks import PredictionTask
from population.spark_records import patient_record_rdd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_cohort(
    spark: SparkSession,
    folder: Path,
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
) -> Cohort:
    """Examples for ``task`` from a folder of Bulk Data NDJSON or patient Bundles."""
    parts = (
        patient_record_rdd(spark, folder)
        .map(lambda record: patient_candidates(record, task, extractor, pseudonym_key))
        .collect()
    )
    return assemble_cohort(parts)

"""Patient records as a Spark RDD, from a folder of Bulk Data NDJSON or of patient Bundles.

NDJSON lines are grouped by the patient they belong to with a shuffle (the grouping
``fhir_client/bulk_patients.py`` does with spill files in one process); Bundles are one
patient each and are read where they are scheduled. Either way an executor builds each
``PatientRecord`` with the same code as this process does. The files must be readable by
every executor (a shared file system or object store on a cluster).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_client.bundles import bundle_patient_records, patient_bundles
from fhir_client.ndjson import is_bulk_folder, ndjson_files, parse_line
from fhir_client.record import PatientRecord, patient_id_of

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession


def resource_rdd(
    spark: SparkSession, folder: Path, types: Collection[str] | None = None
) -> RDD[dict[str, Any]]:
    """Every resource of the NDJSON files of a folder (of the given types), parsed on the
    executors; lines that are not resources are dropped (the in-process reader counts them)."""
    files = ndjson_files(folder, types)
    if not files:
        return spark.sparkContext.emptyRDD()
    lines = spark.sparkContext.textFile(",".join(str(path.resolve()) for path in files))
    return lines.map(parse_line).filter(lambda resource: resource is not None)


def _record(patient: str, resources: Iterable[dict[str, Any]]) -> PatientRecord | None:
    found = list(resources)
    if not any(r["resourceType"] == "Patient" for r in found):
        return None
    return PatientRecord.from_resources(patient, found)


def _bundle_records(paths: Iterator[str]) -> Iterator[PatientRecord]:
    return bundle_patient_records(Path(path) for path in paths)


def patient_record_rdd(spark: SparkSession, folder: Path) -> RDD[PatientRecord]:
    """Each patient's record, built on the executors."""
    context = spark.sparkContext
    if not is_bulk_folder(folder):
        paths = [str(path.resolve()) for path in patient_bundles(folder)]
        slices = max(1, min(len(paths), 4 * context.defaultParallelism))
        return context.parallelize(paths, slices).mapPartitions(_bundle_records)
    return (
        resource_rdd(spark, folder)
        .keyBy(patient_id_of)
        .filter(lambda pair: pair[0] is not None)
        .groupByKey()
        .map(lambda pair: _record(*pair))
        .filter(lambda record: record is not None)
    )

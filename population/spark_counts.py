"""Syndrome cases counted on Spark: the executors reduce and classify each resource with
``case_counts.feed_facts`` (the same Python as in this process); Spark SQL joins cases to
residents' areas and counts distinct patients per syndrome, area and day, the GROUP BY the
store runs. Only the counts come back to the driver."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.syndromic import CaseCount
from knowledge.syndromes import Syndrome
from population.case_counts import (
    SURVEILLANCE_TYPES,
    Case,
    Resident,
    partition_facts,
    sorted_counts,
)
from population.spark_records import resource_rdd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_case_counts(
    spark: SparkSession,
    folder: Path,
    syndromes: Mapping[str, Syndrome],
    secret: bytes,
    fhir_server: str | None = None,
) -> list[CaseCount]:
    """Distinct patients per syndrome, area and day over the export in ``folder``."""
    from pyspark.sql import functions

    facts = (
        resource_rdd(spark, folder, SURVEILLANCE_TYPES)
        .mapPartitions(lambda part: partition_facts(part, syndromes, secret, fhir_server))
        .cache()
    )
    cases = spark.createDataFrame(
        facts.filter(lambda fact: isinstance(fact, Case)).map(tuple),
        "syndrome string, patient_key string, day date",
    )
    residents = spark.createDataFrame(
        facts.filter(lambda fact: isinstance(fact, Resident)).map(tuple),
        "patient_key string, area string",
    ).dropDuplicates(["patient_key"])
    rows = (
        cases.join(residents, "patient_key", "left")
        .groupBy("syndrome", "area", "day")
        .agg(functions.countDistinct("patient_key").alias("patients"))
        .collect()
    )
    facts.unpersist()
    return sorted_counts(CaseCount(r.syndrome, r.area, r.day, r.patients) for r in rows)

"""The engines a population computation runs on: this process (the default) or Apache Spark
(``local[2]`` unless LHS_SPARK_MASTER names a cluster). Both run the same Python functions
on each patient; they differ only in where."""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    PROCESS = "process"
    SPARK = "spark"

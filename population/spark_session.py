"""A small Spark session for population computations.

PySpark is an optional extra (``pip install '.[spark]'``); importing it happens here, when a
session is asked for, so nothing else pays for it. Executors run the project's own Python
functions, so on a cluster the project must be installed on every node (as it is, with the
same interpreter, in local mode).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHUFFLE_PARTITIONS = 8
"""Partitions of a shuffle (grouping by patient, counting): Spark's 200 suit a cluster, not
a laptop's two cores; a cluster sets spark.sql.shuffle.partitions itself."""


class SparkUnavailable(RuntimeError):
    """PySpark is not installed."""


@contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """A Spark session on ``master`` (``local[2]``, ``spark://host:7077`` ...), stopped on
    exit. A session already running in this process (a notebook's, a test session's) is
    lent, not stopped."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise SparkUnavailable(
            "the Spark engine needs PySpark: pip install 'learning-health-system[spark]'"
        ) from error
    running = SparkSession.getActiveSession()
    if running is not None:
        yield running
        return
    # PySpark starts its Python workers with $PYSPARK_PYTHON (else `python3` from the PATH):
    # in local mode they must be this interpreter, which has the project installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName("lhs")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()

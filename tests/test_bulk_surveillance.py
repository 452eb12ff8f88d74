"""Syndrome cases counted over a Bulk Data export are the same in this process, on Spark,
and in the store after `lhs bulk import` (the live feed's path); detection reads them."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from bench.bulk_sample import write_case_reports
from cli.main import app as cli
from knowledge.library import KNOWLEDGE_DIR
from knowledge.syndromes import load_syndromes
from learning.bulk_import import import_bulk
from learning.surveillance import classify_feed
from population.case_counts import SURVEILLANCE_TYPES
from population.engines import Engine
from population.spark_counts import spark_case_counts
from population.volumes import case_volumes
from storage.db import create_db_engine
from storage.migrate import upgrade_database
from storage.repository import Store

KEY = b"surveillance-test-key-of-32-bytes"
SERVER = "https://ehr.example.org/fhir"
ZIPS = ("02139", "10001", "60601", None)
FIRST_DAY = date(2026, 1, 1)


@pytest.fixture(scope="module")
def feed(bulk_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's Patients (most given one of three home ZIP codes) and Conditions and
    Observations, with 3,000 case reports over 90 days added."""
    folder = tmp_path_factory.mktemp("feed")
    for path in bulk_sample.iterdir():
        if path.name.split(".")[0] in SURVEILLANCE_TYPES:
            shutil.copy(path, folder / path.name)
    patients = folder / "Patient.000.ndjson"
    lines = []
    for i, line in enumerate(patients.read_bytes().splitlines()):
        patient = orjson.loads(line)
        if ZIPS[i % len(ZIPS)]:
            patient["address"] = [{"use": "home", "postalCode": ZIPS[i % len(ZIPS)]}]
        lines.append(orjson.dumps(patient))
    patients.write_bytes(b"\n".join(lines) + b"\n")
    write_case_reports(folder, 3_000, FIRST_DAY, 90)
    return folder


def test_spark_and_the_store_count_what_this_process_counts(spark, feed, tmp_path):
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    in_process = case_volumes(Engine.PROCESS, feed, syndromes, KEY, spark_master="unused")
    counts = in_process.counts
    assert len({c.syndrome for c in counts}) == 3
    assert {"021", "100", "606"} <= {c.area for c in counts}
    assert sum(c.patients for c in counts) > 500

    assert spark_case_counts(spark, feed, syndromes, KEY) == counts

    url = f"sqlite:///{tmp_path / 'lhs.db'}"
    upgrade_database(url)
    store = Store(create_db_engine(url))
    import_bulk(store, feed, KEY, SERVER)
    classify_feed(store.surveillance, syndromes, None)
    stored = store.surveillance.case_counts(FIRST_DAY, date(2026, 12, 31))
    store.engine.dispose()
    by_place = sorted(stored, key=lambda c: (c.syndrome, c.area or "", c.day))
    # The store keys pseudonyms by the FHIR server too; counts do not depend on the key.
    assert [(c.syndrome, c.area, c.day, c.patients) for c in by_place] == [
        (c.syndrome, c.area, c.day, c.patients) for c in counts
    ]


def test_lhs_bulk_surveillance_gives_the_same_alarms_on_both_engines(spark, feed, tmp_path):
    env = {"LHS_DATA_DIR": str(tmp_path), "LHS_PSEUDONYM_KEY": KEY.decode()}
    runner = CliRunner()
    outputs = []
    for engine in ("process", "spark"):
        result = runner.invoke(
            cli,
            ["bulk", "surveillance", str(feed), "--engine", engine, "--today", "2026-03-31"],
            env=env,
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output.replace(f"counted on {engine}", "counted"))
    assert outputs[0] == outputs[1]
    assert "daily and 0 weekly area series evaluated" in outputs[0]
    missing = runner.invoke(cli, ["bulk", "surveillance", str(tmp_path)], env=env)
    assert missing.exit_code == 2 and "no NDJSON files" in missing.output

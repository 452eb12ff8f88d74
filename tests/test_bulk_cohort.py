"""Bulk Data NDJSON is a first-class source of patient records, and the readmission cohort
is the same on every source and engine: Bundles or NDJSON, this process or Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds_service.config import SAMPLE_PATIENTS, Settings
from cli.main import app as cli
from fhir_client.bulk_patients import GroupingCounts, bulk_patient_records
from fhir_client.bundles import patient_bundles
from fhir_client.patient_sources import patient_records
from knowledge.library import load_library
from models.cohort import Cohort, build_cohort, cohort_from_records, feature_matrix
from models.features import ReadmissionFeatures
from models.registry import CHAMPION, alias_version
from models.tasks import READMISSION_30D
from population.spark_cohort import spark_cohort

KEY = b"bulk-test-key"


@pytest.fixture(scope="module")
def extractor() -> ReadmissionFeatures:
    return ReadmissionFeatures(load_library())


@pytest.fixture(scope="module")
def from_bundles(extractor) -> Cohort:
    return build_cohort(patient_bundles(SAMPLE_PATIENTS), READMISSION_30D, extractor, KEY)


def _same(a: Cohort, b: Cohort) -> None:
    assert feature_matrix(a.examples) == feature_matrix(b.examples)
    assert [e.label for e in a.examples] == [e.label for e in b.examples]
    assert [(e.patient_key, e.predicted_at, e.lace_score) for e in a.examples] == [
        (e.patient_key, e.predicted_at, e.lace_score) for e in b.examples
    ]
    assert (a.patients, a.data_end, a.excluded) == (b.patients, b.data_end, b.excluded)
    assert a.digest() == b.digest()


def _write(folder: Path, name: str, resources: list[dict]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in resources))


def test_ndjson_resources_are_grouped_by_patient_across_files(tmp_path):
    _write(
        tmp_path,
        "Patient.ndjson",
        [{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}],
    )
    encounter = {"resourceType": "Encounter", "status": "finished"}
    _write(
        tmp_path,
        "Encounter.000.ndjson",
        [
            {**encounter, "id": "e1", "subject": {"reference": "Patient/a"}},
            {**encounter, "id": "e2", "subject": {"reference": "Patient/b"}},
        ],
    )
    _write(
        tmp_path,
        "Encounter.001.ndjson",
        [
            {
                **encounter,
                "id": "e3",
                "subject": {"reference": "https://ehr.example/fhir/Patient/a"},
            },
            {**encounter, "id": "e4", "subject": {"reference": "Patient/nobody"}},
        ],
    )
    _write(tmp_path, "Organization.ndjson", [{"resourceType": "Organization", "id": "o"}])
    (tmp_path / "Condition.ndjson").write_text('{"resourceType": "Condition"\n\n')
    counts = GroupingCounts()
    records = {r.patient_id: r for r in bulk_patient_records(tmp_path, counts)}
    assert sorted(records) == ["a", "b"]
    assert sorted(e.reference for e in records["a"].encounters()) == [
        "Encounter/e1",
        "Encounter/e3",
    ]
    assert [e.reference for e in records["b"].encounters()] == ["Encounter/e2"]
    assert counts == GroupingCounts(
        resources=8, without_patient=1, unreadable=1, patients=2, without_patient_resource=1
    )


def test_the_cohort_from_ndjson_is_the_cohort_from_bundles(bulk_sample, extractor, from_bundles):
    assert from_bundles.examples and from_bundles.excluded
    in_process = cohort_from_records(patient_records(bulk_sample), READMISSION_30D, extractor, KEY)
    _same(from_bundles, in_process)


@pytest.mark.parametrize("source", ["ndjson", "bundles"])
def test_spark_gives_the_same_features_and_labels_as_this_process(
    spark, bulk_sample, extractor, from_bundles, source
):
    folder = bulk_sample if source == "ndjson" else SAMPLE_PATIENTS
    _same(from_bundles, spark_cohort(spark, folder, READMISSION_30D, extractor, KEY))


def _train(root: Path, *args: str) -> tuple[dict[str, float], dict[str, str]]:
    """`lhs train` into its own data folder; the registered run's metrics and tags."""
    env = {"LHS_DATA_DIR": str(root), "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters"}
    result = CliRunner().invoke(
        cli, ["train", READMISSION_30D.name, "--bootstrap", "50", *args], env=env
    )
    assert result.exit_code == 0, result.output
    location = Settings(data_dir=root).mlflow
    name = READMISSION_30D.registered_model
    version = alias_version(location, name, CHAMPION)
    run = location.client().get_run(location.client().get_model_version(name, version).run_id)
    return run.data.metrics, run.data.tags


def test_training_on_spark_from_ndjson_trains_the_model_trained_in_process(
    spark, bulk_sample, tmp_path
):
    process_metrics, process_tags = _train(tmp_path / "process", "--data", str(SAMPLE_PATIENTS))
    spark_metrics, spark_tags = _train(
        tmp_path / "spark", "--data", str(bulk_sample), "--engine", "spark"
    )
    assert spark_tags["dataset.sha256"] == process_tags["dataset.sha256"]
    assert spark_tags["update_method"] == process_tags["update_method"]
    assert spark_metrics == process_metrics
    assert process_metrics["test_auroc"] > 0


def test_an_unknown_engine_is_a_one_line_usage_error(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["train", READMISSION_30D.name, "--engine", "dask"],
        env={"LHS_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "dask" in result.output

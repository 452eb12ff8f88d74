"""Predictive models end to end: cohort from FHIR, training into a real MLflow store in a temp
folder, registry aliases, serving in the real app, hot swap during requests, and served
predictions equal to offline ones for the same patients."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds_service.config import Settings
from cli.main import app as cli
from evaluation.metrics import (
    calibration_intercept,
    calibration_slope,
    choose_threshold,
    decision_curve,
    evaluate_risks,
    net_benefit,
)
from fhir_client.demographics import demographics
from fhir_client.local_store import LocalFhirStore
from fhir_client.record import PatientRecord
from knowledge.calculators.lace import lace_index
from knowledge.library import load_library
from models.cohort import build_cohort, feature_matrix
from models.features import FEATURE_NAMES, ReadmissionFeatures
from models.registry import CHALLENGER, CHAMPION, alias_version, set_alias, versions
from models.serving import ModelSlot, load_served_model
from models.tasks import READMISSION_30D
from point_of_care.examples import encounter_discharge
from point_of_care.sweep import hook_request
from storage.migrate import upgrade_database
from tests.service_app import app_factory
from tests.shared_data import load_bundle, patient_files
from tests.waiting import wait_for

runner = CliRunner()
TASK = READMISSION_30D


# --- metrics -----------------------------------------------------------------------------


def test_calibration_slope_and_intercept_are_ideal_for_a_calibrated_model():
    rng = np.random.default_rng(7)
    p = rng.uniform(0.02, 0.6, 20_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert calibration_slope(y, p) == pytest.approx(1.0, abs=0.06)
    assert calibration_intercept(y, p) == pytest.approx(0.0, abs=0.04)
    # Overconfident risks (logits doubled) show as a slope near 1/2.
    logits = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-2 * logits))
    assert calibration_slope(y, overconfident) == pytest.approx(0.5, abs=0.05)


def test_calibration_fits_are_the_maximum_likelihood_logistic_regressions():
    """The statsmodels GLM fits (binomial family, logit link) give what any unpenalised
    maximum likelihood fit gives: here scikit-learn's for the slope, and for calibration in
    the large the intercept that solves its score equation (mean recalibrated risk = event
    rate). They replaced a hand-written Newton-Raphson whose results agreed to 1e-8."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(12)
    p = rng.uniform(0.01, 0.5, 3000)
    y = (rng.uniform(size=p.size) < np.clip(1.6 * p, 0, 1)).astype(float)
    logits = np.log(p / (1 - p))
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    reference.fit(logits[:, None], y)
    assert calibration_slope(y, p) == pytest.approx(reference.coef_[0][0], abs=1e-5)
    intercept = calibration_intercept(y, p)
    assert intercept > 0  # risks too low by a factor of 1.6
    assert (1 / (1 + np.exp(-(intercept + logits)))).mean() == pytest.approx(y.mean(), abs=1e-8)


def test_calibration_in_the_large_converges_far_from_the_truth():
    """Risks of about 0.5% where half have the event: a plain Newton step overshoots; the
    fitted intercept must still solve the score equation (mean risk = event rate)."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0001, 0.01, 400)
    y = (rng.uniform(size=p.size) < 0.47).astype(float)
    intercept = calibration_intercept(y, p)
    recalibrated = 1 / (1 + np.exp(-(intercept + np.log(p / (1 - p)))))
    assert recalibrated.mean() == pytest.approx(y.mean(), abs=1e-6)


def test_net_benefit_follows_vickers_and_elkin():
    y = np.array([1, 0, 1, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.1, 0.05])
    # Treat p >= 0.5: one true and one false positive of five; weight 0.5/0.5 = 1.
    assert net_benefit(y, p, 0.5) == pytest.approx(1 / 5 - 1 / 5)
    # Threshold 0.15: TP 2, FP 1, weight 0.15/0.85.
    assert net_benefit(y, p, 0.15) == pytest.approx(2 / 5 - 1 / 5 * 0.15 / 0.85)
    curve = decision_curve(y, p, np.array([0.15, 0.5]))
    assert choose_threshold(curve, 0.1, 0.6) == 0.15


def test_bootstrap_intervals_surround_the_estimate():
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=400) < 0.3).astype(float)
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.1, 400), 0.01, 0.99)
    estimates = evaluate_risks(y, p, rounds=200, seed=3)
    for estimate in estimates.values():
        assert estimate.low <= estimate.value <= estimate.high
    assert estimates["auroc"].value > 0.8


# --- features and labels -----------------------------------------------------------------

START = datetime(2020, 1, 10, 8, tzinfo=UTC)


def _encounter(eid: str, klass: str, start: datetime, hours: float) -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": klass},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()},
    }


def _condition(cid: str, snomed: str, onset: datetime) -> dict:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
        "onsetDateTime": onset.isoformat(),
    }


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1940-05-01"}


@pytest.fixture(scope="module")
def extractor() -> ReadmissionFeatures:
    return ReadmissionFeatures(load_library())


def test_features_ignore_everything_recorded_after_the_prediction_time(extractor):
    stay = _encounter("stay", "IMP", START, 24 * 4)
    history = [
        PATIENT,
        stay,
        _encounter("ed-before", "EMER", START - timedelta(days=40), 3),
        _condition("chf", "88805009", START - timedelta(days=400)),  # chronic congestive HF
    ]
    later = [
        _encounter("ed-after", "EMER", START + timedelta(days=9), 3),
        _condition("copd", "13645005", START + timedelta(days=9)),
    ]
    discharge = START + timedelta(days=4)
    before = extractor(PatientRecord.from_resources("p1", history), stay, discharge)
    after = extractor(PatientRecord.from_resources("p1", history + later), stay, discharge)
    assert before == after
    assert before["length_of_stay_days"] == 4
    assert before["ed_visits_6m"] == 1
    assert before["heart_failure"] == 1 and before["chronic_pulmonary_disease"] == 0
    assert before["age_years"] == 79
    assert list(before) == list(FEATURE_NAMES)


def test_labels_come_from_later_encounters_within_the_horizon(tmp_path, extractor):
    resources = [
        PATIENT,
        _encounter("a", "IMP", START, 48),
        _encounter("b", "EMER", START + timedelta(days=12), 4),  # revisit: a is positive
        _encounter("c", "IMP", START + timedelta(days=80), 48),  # 68 days after b: b negative
        _encounter("end", "AMB", START + timedelta(days=200), 1),  # the data run until here
        _encounter("d", "EMER", START + timedelta(days=190), 2),  # follow-up incomplete
        _encounter("e", "EMER", START - timedelta(days=900), 24 * 5),  # a 5-day "ED visit"
    ]
    bundle = tmp_path / "p1.json"
    bundle.write_text(
        json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]})
    )
    cohort = build_cohort([bundle], TASK, extractor, b"key")
    labels = {e.encounter: e.label for e in cohort.examples}
    assert labels == {"Encounter/a": 1, "Encounter/b": 0, "Encounter/c": 0}
    assert cohort.excluded["follow-up incomplete"] == 1
    assert cohort.excluded["implausible encounter period"] == 1


# --- training, registry and serving ------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The synthetic patients, trained with `lhs train` into an MLflow store in a temp folder."""
    root = tmp_path_factory.mktemp("models")
    data = root / "patients"
    data.mkdir()
    for path in patient_files():
        (data / path.name).symlink_to(path)
    env = {
        "LHS_DATA_DIR": str(root / "data"),
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    result = runner.invoke(
        cli, ["train", TASK.name, "--data", str(data), "--bootstrap", "100"], env=env
    )
    assert result.exit_code == 0, result.output
    settings = Settings(data_dir=root / "data", pseudonym_key="test-pseudonym-key-of-32-characters")
    upgrade_database(settings.resolved_database_url)  # as `make run` does before anything else
    return settings, data, result.output


def test_training_logs_metrics_plots_dataset_and_model_card_to_mlflow(trained):
    settings, _, output = trained
    assert "registered lhs-readmission-30d version 1 as @champion" in output
    assert "LACE" in output
    client = settings.mlflow.client()
    experiment = client.get_experiment_by_name(TASK.name)
    # The UI opens the experiment on its runs, not on GenAI traces.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (selected,) = client.search_runs([experiment.experiment_id])
    method = selected.data.tags["update_method"]
    assert selected.info.run_name == f"v1 {method} (train)"
    metrics = selected.data.metrics
    assert all(round(value, 4) == value for value in metrics.values())
    for name in (
        "test_auroc",
        "test_auprc",
        "test_brier",
        "test_calibration_slope",
        "test_calibration_intercept",
    ):
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    assert "lace_auroc" in metrics and "auroc_gain_over_lace" in metrics
    assert len(selected.data.tags["dataset.sha256"]) == 64
    assert {d.dataset.name for d in selected.inputs.dataset_inputs} == {
        f"{TASK.name}-train",
        f"{TASK.name}-test",
    }
    artifacts = {a.path for a in client.list_artifacts(selected.info.run_id, "plots")}
    assert artifacts == {
        "plots/roc.png",
        "plots/precision_recall.png",
        "plots/calibration.png",
        "plots/decision_curve_train_oof.png",
        "plots/decision_curve_test.png",
    }
    card = json.loads(
        Path(client.download_artifacts(selected.info.run_id, "model_card.json")).read_text()
    )
    fairness = card["quantitative_measures_of_performance"]["fairness_of_prediction_in_test_data"]
    assert {row["attribute"] for row in fairness} == {"sex", "age band", "race"}
    assert {row["group"] for row in fairness if row["attribute"] == "race"} >= {"White"}
    assert card["purpose_of_the_intervention"]["intended_decision_making_role"]
    gaps = card["quantitative_measures_of_performance"]["fairness_gaps_in_test_data"]
    assert "calibration_in_the_large_gap" in gaps["sex"]
    assert any(name.startswith("fairness_gap.") for name in metrics)
    # Evidence first: an update of the LACE index, chosen by the closed test, whose known
    # risk factors all keep their direction (the synthetic data alone would invert some).
    updating = card["intervention_development"]["model_updating"]
    assert updating["method"] == method
    assert updating["starting_point"].startswith("the LACE index")
    assert updating["tests_against_most_extensive"][0]["simpler"] == "logistic-recalibration"
    for name in updating["non_negative"]:
        assert updating["coefficients"][name] >= 0, name
    assert not any(
        "Against clinical expectation" in line for line in card["cautioned_out_of_scope_use"]
    )
    assert "synthetic records" in card["intervention_development"]["training_data"]
    version = client.get_model_version(TASK.registered_model, "1")
    assert version.tags["update_method"] == method and method in version.description


def test_the_registered_model_has_a_signature_and_its_metadata(trained):
    settings, _, _ = trained
    assert alias_version(settings.mlflow, TASK.registered_model, CHAMPION) == "1"
    served = load_served_model(settings.mlflow, TASK.registered_model, "1")
    assert served.metadata["feature_names"] == list(FEATURE_NAMES)
    assert 0 < served.metadata["observed_rates"]["all"] < 1
    assert served.model_card["details_and_output_of_the_intervention"]["name"].startswith(
        TASK.registered_model
    )
    from mlflow.models import Model

    with settings.mlflow.active():
        signature = Model.load(f"models:/{TASK.registered_model}/1").signature
    assert [c.name for c in signature.inputs.inputs] == list(FEATURE_NAMES)


@pytest.fixture(scope="module")
def cohort(trained):
    """The training cohort again, with each index encounter's Bundle (as an EHR would hold it)."""
    _, data, _ = trained
    paths = sorted(data.iterdir())
    built = build_cohort(
        paths, TASK, ReadmissionFeatures(load_library()), b"test-pseudonym-key-of-32-characters"
    )
    bundle_of = {}
    for path in paths:
        bundle = load_bundle(path.resolve())
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Encounter":
                bundle_of[f"Encounter/{entry['resource']['id']}"] = bundle
    return built, bundle_of


def _discharge_requests(cohort, service, count):
    """Requests for the latest ``count`` discharges of the cohort, and their examples."""
    built, bundle_of = cohort
    chosen = built.examples[-count:]
    requests = []
    for example in chosen:
        store = LocalFhirStore.from_bundles([bundle_of[example.encounter]])
        (patient_id,) = store.patient_ids()
        context = {
            "userId": "Practitioner/1",
            "patientId": patient_id,
            "encounterId": example.encounter.removeprefix("Encounter/"),
        }
        requests.append(hook_request(store, service, context))
    return chosen, requests


def test_served_predictions_equal_offline_predictions(trained, cohort, tmp_path):
    settings, _, _ = trained
    app = app_factory(tmp_path)(mlflow_tracking_uri=settings.mlflow.tracking_uri)
    state = app.state.lhs
    service = state.services["lhs-encounter-discharge"]
    examples, requests = _discharge_requests(cohort, service, 8)
    offline = load_served_model(settings.mlflow, TASK.registered_model, "1").model.predict_proba(
        np.array(feature_matrix(examples))
    )[:, 1]

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
                for request in requests:
                    response = await client.post(
                        "/cds-services/lhs-encounter-discharge", json=request
                    )
                    assert response.status_code == 200, response.text
                ready = (await client.get("/readyz")).json()
                card = (await client.get(f"/models/{TASK.registered_model}/versions/1/card")).json()
                return ready, card

    ready, card = asyncio.run(scenario())
    assert ready["models"][TASK.registered_model] == {"status": "ok", "version": "1"}
    assert card["version"] == "1" and "purpose_of_the_intervention" in card
    assert card["approval"] == "the first model: champion because none was registered"
    stored = list(reversed(state.store.predictions(TASK.registered_model)))
    assert [p.model_version for p in stored] == ["1"] * len(examples)
    assert [p.risk for p in stored] == pytest.approx(list(offline), abs=1e-12)
    for record, example in zip(stored, examples, strict=True):
        assert record.features == example.features
        assert set(record.contributions) == set(FEATURE_NAMES)
        # The training cohort names the groups of the fairness checks as serving does.
        assert (record.sex, record.race) == (example.sex, example.race)
    # Sex, race and ethnicity as each Patient states them are kept for fairness audits, and
    # are no feature of the model.
    for record, request in zip(stored, requests, strict=True):
        stated = demographics(request["prefetch"]["patient"])
        assert (record.sex, record.race, record.ethnicity) == (
            stated.sex,
            stated.race,
            stated.ethnicity,
        )
        assert record.race != "unknown" and record.ethnicity != "unknown"
    assert not {"race", "ethnicity", "sex"} & set(FEATURE_NAMES)


def test_a_high_risk_discharge_gets_an_explained_card_with_the_model_version(
    trained, cohort, tmp_path
):
    settings, _, _ = trained
    app = app_factory(tmp_path)(mlflow_tracking_uri=settings.mlflow.tracking_uri)
    service = app.state.lhs.services["lhs-encounter-discharge"]
    examples, requests = _discharge_requests(cohort, service, 40)
    served = load_served_model(settings.mlflow, TASK.registered_model, "1")
    risks = served.model.predict_proba(np.array(feature_matrix(examples)))[:, 1]
    assert served.threshold is not None, "the decision curve found no useful threshold"
    high = [r for r, risk in zip(requests, risks, strict=True) if risk >= served.threshold]
    assert high, "no discharge in the sample reaches the decision threshold"

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
                answer = await client.post("/cds-services/lhs-encounter-discharge", json=high[0])
                model_cards = [
                    c
                    for c in answer.json()["cards"]
                    if c["source"]["topic"]["code"] == TASK.registered_model
                ]
                (shown,) = model_cards
                explained = await client.get(f"/cards/{shown['uuid']}/explanation")
                return shown, explained.json()

    card, explanation = asyncio.run(scenario())
    # The explanation traces the card to the model version and the exact feature vector.
    assert explanation["prediction"]["model"] == TASK.registered_model
    assert explanation["prediction"]["version"] == "1"
    assert explanation["prediction"]["risk"] >= served.threshold
    assert set(explanation["prediction"]["features"]) == set(FEATURE_NAMES)
    assert card["summary"].startswith("Readmission risk ")
    assert "LACE index" in card["detail"] and "Main factors for this patient" in card["detail"]
    assert card["source"]["label"] == f"LHS model {TASK.registered_model} v1"
    assert (
        card["links"][0]["url"] == f"http://cds.test/models/{TASK.registered_model}/versions/1/card"
    )
    assert card["suggestions"][0]["actions"][0]["resource"]["resourceType"] == "ServiceRequest"


def _lace_17_discharge(today: date) -> dict:
    """The issue's patient: an 81-year-old man with heart failure, COPD and diabetes, admitted
    through the emergency department for 10 days after 3 emergency visits."""
    request = copy.deepcopy(encounter_discharge(today))
    prefetch = request["prefetch"]
    admitted = f"{today - timedelta(days=10)}T09:00:00Z"
    encounters = []
    for entry in prefetch["encounters"]["entry"]:
        resource = entry["resource"]
        if resource["id"].startswith("adm-"):
            continue  # no earlier admissions: the risk comes from LACE's parts
        if resource["id"] in ("stay-1", "ed-route"):
            resource["period"]["start"] = admitted
        if resource["id"] == "ed-route":
            resource["period"]["end"] = f"{today - timedelta(days=10)}T15:00:00Z"
        encounters.append(entry)
    prefetch["encounters"]["entry"] = encounters
    prefetch["encounter"] = next(
        e["resource"] for e in encounters if e["resource"]["id"] == "stay-1"
    )
    diabetes = copy.deepcopy(prefetch["conditions"]["entry"][0])
    diabetes["resource"] |= {
        "id": "dm",
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes"}
            ]
        },
    }
    prefetch["conditions"]["entry"].append(diabetes)
    return request


def _elective_discharge(today: date) -> dict:
    """A 30-year-old woman home after a one-night elective stay: no comorbidity, no ED visits."""
    pid = "elective-discharge"
    stay = {
        "resourceType": "Encounter",
        "id": "stay-e",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {
            "start": f"{today - timedelta(days=1)}T09:00:00Z",
            "end": f"{today}T11:00:00Z",
        },
    }
    return {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": pid, "encounterId": "stay-e"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": pid,
                "gender": "female",
                "birthDate": f"{today.year - 30}-01-15",
            },
            "encounter": stay,
            "encounters": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": stay}],
            },
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
            "medications": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }


def test_the_lace_17_patient_gets_a_model_card_and_a_low_risk_elective_discharge_does_not(
    trained, tmp_path
):
    settings, _, _ = trained
    served = load_served_model(settings.mlflow, TASK.registered_model, "1")
    assert served.threshold is not None
    app = app_factory(tmp_path)(mlflow_tracking_uri=settings.mlflow.tracking_uri)
    today = datetime.now(UTC).date()
    requests = {"lace-17": _lace_17_discharge(today), "elective": _elective_discharge(today)}

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
                answers = {}
                for name, request in requests.items():
                    response = await client.post(
                        "/cds-services/lhs-encounter-discharge", json=request
                    )
                    assert response.status_code == 200, response.text
                    answers[name] = response.json()["cards"]
                return answers

    answers = asyncio.run(scenario())
    stored = {
        p.features["age_years"]: p for p in app.state.lhs.store.predictions(TASK.registered_model)
    }
    high, low = stored[81.0], stored[30.0]
    lace = lace_index(
        length_of_stay_days=int(high.features["length_of_stay_days"]),
        acute_admission=bool(high.features["acute_admission"]),
        charlson=int(high.features["charlson_index"]),
        ed_visits_6_months=int(high.features["ed_visits_6m"]),
    )
    assert lace.score >= 16  # 10 days (5), via the ED (3), Charlson >= 4 (5), 3 ED visits (3)

    def topics(cards):
        return {c["source"]["topic"]["code"] for c in cards if c["source"].get("topic")}

    assert TASK.registered_model in topics(answers["lace-17"]), answers["lace-17"]
    assert "lace-readmission-risk" in topics(answers["lace-17"])
    assert high.risk >= served.threshold
    assert TASK.registered_model not in topics(answers["elective"])
    assert low.risk < served.threshold
    # The elective discharge sits below the training period's event rate, the LACE-17 one
    # above it.
    assert low.risk < served.metadata["observed_rates"]["all"] < high.risk


def test_a_new_champion_is_swapped_in_during_requests_without_errors(trained, cohort, tmp_path):
    settings, _, _ = trained
    location = settings.mlflow
    # A second version of the same model, registered as challenger, then promoted mid-stream.
    import mlflow

    with location.active():
        source = location.client().get_model_version(TASK.registered_model, "1").source
        new = mlflow.register_model(source, TASK.registered_model)
    set_alias(location, TASK.registered_model, CHALLENGER, str(new.version))
    app = app_factory(tmp_path)(
        mlflow_tracking_uri=location.tracking_uri, model_refresh_seconds=0.2
    )
    state = app.state.lhs
    service = state.services["lhs-encounter-discharge"]
    _, requests = _discharge_requests(cohort, service, 3)

    async def scenario():
        statuses = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:

                async def stream(seconds):
                    end = asyncio.get_running_loop().time() + seconds
                    i = 0
                    while asyncio.get_running_loop().time() < end:
                        response = await client.post(
                            "/cds-services/lhs-encounter-discharge",
                            json={
                                **requests[i % 3],
                                "hookInstance": f"00000000-0000-4000-8000-{i:012d}",
                            },
                        )
                        statuses.append(response.status_code)
                        i += 1

                first = asyncio.create_task(stream(2.5))
                await asyncio.sleep(0.5)
                await asyncio.to_thread(
                    set_alias, location, TASK.registered_model, CHAMPION, str(new.version)
                )
                await first
                ready = (await client.get("/readyz")).json()
        return statuses, ready

    try:
        statuses, ready = asyncio.run(scenario())
    finally:
        set_alias(location, TASK.registered_model, CHAMPION, "1")
    assert statuses and set(statuses) == {200}
    assert ready["models"][TASK.registered_model]["version"] == str(new.version)
    served_versions = [
        p.model_version for p in reversed(state.store.predictions(TASK.registered_model))
    ]
    assert served_versions[0] == "1" and served_versions[-1] == str(new.version)
    # Each call was answered wholly by one version: the swap happened once, in order.
    switch = served_versions.index(str(new.version))
    assert set(served_versions[switch:]) == {str(new.version)}


def test_a_challenger_runs_in_shadow_beside_the_champion(trained, cohort, tmp_path):
    """The same model registered again runs silently: it agrees on every call, and the
    clinician only ever sees the champion's version."""
    settings, _, _ = trained
    location = settings.mlflow
    import mlflow

    with location.active():
        source = location.client().get_model_version(TASK.registered_model, "1").source
        twin = str(mlflow.register_model(source, TASK.registered_model).version)
    app = app_factory(tmp_path)(mlflow_tracking_uri=location.tracking_uri, spool_drain_interval=0.1)
    state = app.state.lhs
    env = {
        "LHS_DATA_DIR": str(settings.data_dir),
        "LHS_DATABASE_URL": state.settings.resolved_database_url,
        "LHS_MLFLOW_TRACKING_URI": location.tracking_uri,
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    started = runner.invoke(
        cli,
        ["shadow", "start", "twin", "--model", TASK.name, "--version", twin, "--by", "ML team"],
        env=env,
    )
    assert started.exit_code == 0, started.output
    missing = runner.invoke(
        cli,
        ["shadow", "start", "ghost", "--model", TASK.name, "--version", "999", "--by", "ML team"],
        env=env,
    )
    assert missing.exit_code == 1 and "cannot be served" in missing.output
    _, requests = _discharge_requests(cohort, state.services["lhs-encounter-discharge"], 6)
    with TestClient(app) as client:
        wait_for(lambda: "twin" in state.shadows)
        for request in requests:
            response = client.post("/cds-services/lhs-encounter-discharge", json=request)
            assert response.status_code == 200
            for card in response.json()["cards"]:
                assert f"versions/{twin}/" not in json.dumps(card)
    summary = json.loads(runner.invoke(cli, ["shadow", "report", "twin", "--json"], env=env).output)
    assert summary["calls"] == 6 and summary["agreement_rate"] == 1.0
    assert summary["live_versions"] == ["1"] and summary["candidate_version"] == twin
    assert summary["extra"] == summary["missed"] == 0


def test_without_a_model_the_rules_still_answer_and_readyz_says_so(tmp_path):
    app = app_factory(tmp_path)()
    service = app.state.lhs.services["lhs-encounter-discharge"]
    slot: ModelSlot = app.state.lhs.models[0].slot
    slot.refresh()
    assert slot.current is None and slot.status.startswith("missing")
    assert not (tmp_path / "mlflow").exists(), "checking for a model must not create a store"
    assert service.recommenders, "the LACE rule still answers encounter-discharge"


def test_models_cli_lists_and_promotes(trained):
    settings, _, _ = trained
    env = {"LHS_DATA_DIR": str(settings.data_dir)}
    listing = runner.invoke(cli, ["models", "list"], env=env)
    assert listing.exit_code == 0
    assert "lhs-readmission-30d v1 " in listing.output and "@champion" in listing.output
    latest = versions(settings.mlflow, TASK.registered_model)[-1].version
    set_alias(settings.mlflow, TASK.registered_model, CHALLENGER, latest)
    try:
        promoted = runner.invoke(cli, ["models", "promote", TASK.name], env=env)
        assert promoted.exit_code == 0, promoted.output
        assert alias_version(settings.mlflow, TASK.registered_model, CHAMPION) == latest
    finally:
        set_alias(settings.mlflow, TASK.registered_model, CHAMPION, "1")
    # What `make run` calls: nothing to do when a champion exists ...
    ensured = runner.invoke(cli, ["models", "ensure"], env=env)
    assert ensured.exit_code == 0 and "@champion present" in ensured.output


def test_models_ensure_without_training_data_leaves_the_rules_to_answer(tmp_path):
    env = {"LHS_DATA_DIR": str(tmp_path / "data"), "LHS_TRAINING_DATA": str(tmp_path / "none")}
    result = runner.invoke(cli, ["models", "ensure"], env=env)
    assert result.exit_code == 0
    assert "no @champion and no training data" in result.output


def test_contributions_of_a_linear_model_are_its_coefficients_times_the_difference():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.risk_model import RiskModel

    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 3)) * [1.0, 5.0, 0.5] + [0.0, 40.0, 1.0]
    y = (rng.uniform(size=600) < 1 / (1 + np.exp(-(X[:, 0] - 0.1 * (X[:, 1] - 40))))).astype(int)
    calibrated = CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LogisticRegression()), cv=3, ensemble=False
    ).fit(X, y)
    model = RiskModel(calibrated, ["a", "b", "c"], list(X.mean(axis=0)))
    row = [1.5, 31.0, 0.2]
    risk, contributions = model.assess(row)
    assert risk == pytest.approx(model.predict_proba(np.array([row]))[0, 1], abs=1e-12)
    scaler, linear = model.base[0], model.base[-1]
    expected = linear.coef_[0] * (np.array(row) - X.mean(axis=0)) / scaler.scale_
    assert [contributions[k] for k in "abc"] == pytest.approx(list(expected), abs=1e-9)


def test_retraining_on_served_predictions_is_gated_recorded_and_can_be_rolled_back(
    trained, cohort, tmp_path
):
    from hooks.cards import Card, Source, Suggestion
    from hooks.feedback import FeedbackItem
    from storage.db import create_db_engine
    from storage.repository import IssuedCardInput, PredictionInput, Store
    from storage.tables import Invocation

    settings, data, _ = trained
    database_url = f"sqlite:///{tmp_path / 'lhs.db'}"
    upgrade_database(database_url)
    store = Store(create_db_engine(database_url))
    # The latest 150 discharges come back as served, labelled predictions; a card was shown
    # for every fifth, and accepted for every tenth.
    built, _ = cohort
    served = built.examples[-150:]
    accepted = 0
    for i, example in enumerate(served):
        card = Card(
            summary="Readmission risk",
            indicator="warning",
            source=Source(label="LHS"),
            suggestions=[Suggestion(label="Transitional care follow-up")],
            selectionBehavior="at-most-one",
        )
        with_card = i % 5 == 0
        store.record_invocation(
            Invocation(
                hook_instance=f"00000000-0000-4000-8000-{i:012d}",
                service_id="lhs-encounter-discharge",
                hook="encounter-discharge",
                patient_key=example.patient_key,
                status_code=200,
            ),
            [IssuedCardInput(card, TASK.registered_model, "1")] if with_card else [],
            [
                PredictionInput(
                    TASK.registered_model,
                    "1",
                    0.1,
                    0.12,
                    example.features,
                    {},
                    example.predicted_at,
                    30,
                    card.uuid if with_card else None,
                )
            ],
        )
        if with_card:
            outcome = "accepted" if i % 10 == 0 else "overridden"
            accepted += outcome == "accepted"
            raw = {
                "card": card.uuid,
                "outcome": outcome,
                "outcomeTimestamp": "2021-04-01T00:00:00Z",
            }
            if outcome == "accepted":
                raw["acceptedSuggestions"] = [{"id": card.suggestions[0].uuid}]
            store.record_feedback(
                "", "lhs-encounter-discharge", [FeedbackItem.model_validate(raw)], [raw]
            )
    labels = {
        p.id: e.label
        for p, e in zip(store.predictions(TASK.registered_model)[::-1], served, strict=True)
    }
    store.set_labels(labels)

    env = {
        "LHS_DATA_DIR": str(settings.data_dir),
        "LHS_DATABASE_URL": database_url,
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    result = runner.invoke(
        cli,
        ["retrain", TASK.name, "--data", str(data), "--require-approval", "--bootstrap", "100"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "150 served examples used" in result.output
    decision = store.decisions(TASK.registered_model)[0]
    assert decision.decision in {"awaiting-approval", "rejected"}
    assert decision.champion_version == "1" and decision.reasons
    assert alias_version(settings.mlflow, TASK.registered_model, CHAMPION) == "1"

    client = settings.mlflow.client()
    gate_run = client.get_run(decision.mlflow_run_id)
    assert gate_run.data.tags["decision"] == decision.decision
    assert gate_run.data.tags["treated_excluded"] == str(accepted)
    assert gate_run.data.metrics["feedback.accepted.n"] == accepted
    assert "challenger_auroc" in gate_run.data.metrics and "champion_auroc" in gate_run.data.metrics
    assert gate_run.data.metrics["psi.prediction"] >= 0 and "psi.age_years" in gate_run.data.metrics
    by_year = json.loads(
        Path(
            client.download_artifacts(gate_run.info.run_id, "performance_by_year.json")
        ).read_text()
    )
    assert {"champion", "challenger"} == set(by_year) and by_year["champion"][0]["n"] > 0
    plots = {a.path for a in client.list_artifacts(gate_run.info.run_id, "plots")}
    assert plots == {"plots/roc.png", "plots/calibration.png"}
    assert gate_run.data.params["served_share"] == "0.5"
    assert gate_run.info.run_name == (
        f"gate v{decision.challenger_version} vs v1: {decision.decision}"
    )
    tags = client.get_model_version(TASK.registered_model, decision.challenger_version).tags
    assert (
        tags["gate_decision"] == decision.decision and tags["gate_run_id"] == gate_run.info.run_id
    )
    if decision.decision == "rejected":
        assert tags["refusal_reasons"].startswith("FAIL")

    challenger = decision.challenger_version
    approve = runner.invoke(cli, ["models", "promote", TASK.name, challenger, "--approve"], env=env)
    try:
        if decision.decision == "awaiting-approval":
            assert approve.exit_code == 0, approve.output
            assert alias_version(settings.mlflow, TASK.registered_model, CHAMPION) == challenger
        else:
            assert approve.exit_code != 0  # a refused challenger cannot be approved
            manual = runner.invoke(cli, ["models", "promote", TASK.name, challenger], env=env)
            assert manual.exit_code == 0, manual.output
        # Rollback is one command, and it is recorded.
        rolled = runner.invoke(cli, ["models", "rollback", TASK.name], env=env)
        assert rolled.exit_code == 0, rolled.output
        assert alias_version(settings.mlflow, TASK.registered_model, CHAMPION) == "1"
        assert [d.decision for d in store.decisions(TASK.registered_model)][-1] == "rolled-back"
        rolled_back = client.get_model_version(TASK.registered_model, challenger).tags
        assert "rolled_back" in rolled_back and "approval" in rolled_back
        listing = runner.invoke(cli, ["models", "decisions", TASK.name], env=env)
        assert "rolled-back" in listing.output and decision.decision in listing.output
    finally:
        set_alias(settings.mlflow, TASK.registered_model, CHAMPION, "1")

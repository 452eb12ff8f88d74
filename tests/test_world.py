"""The simulated world of `make demo` has the properties its docstring claims: new people
only, a latent factor no served feature carries, confounded acceptance, a true risk the
additive learner cannot represent, subgroup treatment effects, and drift. Every assertion
is on quantities computed from the world, not on numbers copied from it."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import numpy as np
import pytest

from demo.world import (
    WORLDS,
    acceptance_probability,
    discharge,
    new_patient,
    score_against_truth,
    treated_risk,
    treatment_group,
    untreated_risk,
)
from fhir_client.record import PatientRecord
from knowledge.library import load_library
from models.features import FEATURE_NAMES, ReadmissionFeatures
from tests.shared_data import load_bundle, patient_files

WHEN = datetime(2021, 4, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def templates() -> list[dict]:
    found = []
    for path in patient_files():
        bundle = load_bundle(path)
        if any(
            e["resource"]["resourceType"] == "Encounter"
            and e["resource"].get("class", {}).get("code") in {"IMP", "EMER"}
            for e in bundle["entry"]
        ):
            found.append(bundle)
        if len(found) == 25:
            return found
    return found


def _served(world_name: str, round_number: int, templates: list[dict], n: int, seed: int):
    """n discharges of new patients: (patient, features as the service computes them)."""
    world = WORLDS[world_name]
    features = ReadmissionFeatures(load_library())
    rng = random.Random(seed)
    served = []
    for i in range(n):
        patient = new_patient(templates[i % len(templates)], world, round_number, rng)
        stay = discharge(patient, WHEN, world, round_number, rng)
        resources = [e["resource"] for e in patient.bundle["entry"]] + [stay]
        record = PatientRecord.from_resources(patient.patient_id, resources)
        found = features(record, stay, datetime.fromisoformat(stay["period"]["end"]))
        assert found is not None
        served.append((patient, found))
    return served


def _template_id(bundle: dict) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def test_every_discharge_is_a_new_person_and_the_latent_factor_is_no_served_feature(templates):
    served = _served("confounded", 1, templates, 60, seed=1)
    ids = [patient.patient_id for patient, _ in served]
    assert len(set(ids)) == len(ids)  # nobody twice: training and gate windows are disjoint
    assert not set(ids) & {_template_id(t) for t in templates}  # nor a template's identity
    for patient, features in served:
        assert set(features) == set(FEATURE_NAMES)
        references = {
            e["resource"].get("subject", {}).get("reference") for e in patient.bundle["entry"]
        } - {None}
        assert references == {f"Patient/{patient.patient_id}"}
        resource = next(
            e["resource"]
            for e in patient.bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        assert "name" not in resource
        assert str(round(patient.frailty, 6)) not in str(patient.bundle)  # in no resource
    # Same served features, other frailty: another true risk. The model cannot see it.
    world = WORLDS["confounded"]
    _, features = served[0]
    assert untreated_risk(world, features, 1.0, 1) > untreated_risk(world, features, -1.0, 1)


def test_acceptance_is_confounded_by_the_latent_factor_only_in_the_confounded_world():
    honest, confounded = WORLDS["honest"], WORLDS["confounded"]
    assert acceptance_probability(honest, 2.0) == acceptance_probability(honest, -2.0)
    assert acceptance_probability(confounded, 2.0) > 2 * acceptance_probability(confounded, -2.0)


def test_the_true_risk_is_not_additive_on_the_logit_scale(templates):
    """A long stay adds log-odds only for the multimorbid: an interaction a logistic model
    of the served features (without product terms) cannot represent."""
    world = WORLDS["honest"]
    _, features = _served("honest", 1, templates, 1, seed=2)[0]

    def log_odds(**changes: float) -> float:
        risk = untreated_risk(world, {**features, **changes}, 0.0, 1)
        return math.log(risk / (1 - risk))

    long_stay_multimorbid = log_odds(length_of_stay_days=6, charlson_index=3) - log_odds(
        length_of_stay_days=1, charlson_index=3
    )
    long_stay_otherwise = log_odds(length_of_stay_days=6, charlson_index=0) - log_odds(
        length_of_stay_days=1, charlson_index=0
    )
    assert long_stay_multimorbid > 0 and long_stay_otherwise == pytest.approx(0.0)
    # Age acts as a step, not a slope.
    assert log_odds(age_years=50) == pytest.approx(log_odds(age_years=70))
    assert log_odds(age_years=80) > log_odds(age_years=70)


def test_transitional_care_helps_the_subgroups_differently(templates):
    served = _served("honest", 1, templates, 60, seed=3)
    effects: dict[str, set[float]] = {}
    for patient, features in served:
        risk = untreated_risk(WORLDS["honest"], features, patient.frailty, 1)
        effects.setdefault(treatment_group(features), set()).add(
            round(treated_risk(features, risk) / risk, 9)
        )
    assert set(effects) == {"65 and over", "under 65"}  # both groups are served
    (older,), (younger,) = effects["65 and over"], effects["under 65"]
    assert older < younger < 1  # both lowered, the older far more


def test_drift_raises_the_base_rate_and_changes_the_case_mix(templates):
    world = WORLDS["drift"]
    assert world.drift_round is not None
    before = _served("drift", world.drift_round - 1, templates, 80, seed=4)
    after = _served("drift", world.drift_round, templates, 80, seed=4)

    def mean_risk(served, round_number: int) -> float:
        return float(
            np.mean([untreated_risk(world, f, p.frailty, round_number) for p, f in served])
        )

    assert mean_risk(after, world.drift_round) > mean_risk(before, world.drift_round - 1) + 0.03
    age = [np.mean([f["age_years"] for _, f in s]) for s in (before, after)]
    inpatient = [np.mean([f["length_of_stay_days"] >= 1 for _, f in s]) for s in (before, after)]
    assert age[1] > age[0] + 5 and inpatient[1] > inpatient[0]
    honest = WORLDS["honest"]
    assert not honest.drifted(100) and honest.baseline_log_odds(1) == honest.baseline_log_odds(100)


def test_the_truth_score_rewards_the_truth():
    rng = np.random.default_rng(6)
    truth = rng.uniform(0.02, 0.6, 500)
    exact = score_against_truth(truth, truth)
    noisy = score_against_truth(truth, np.clip(truth + rng.normal(0, 0.15, 500), 0.01, 0.99))
    assert exact.mean_absolute_error == 0 and exact.predicted_to_true == pytest.approx(1.0)
    assert exact.auroc > noisy.auroc > 0.5
    assert score_against_truth(truth, truth / 2).predicted_to_true == pytest.approx(0.5)

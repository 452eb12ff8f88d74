"""Retraining's choices: the gate window of served patients, the weight of served examples,
and training that honours those weights (a real MLflow store in a temp folder)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evaluation.gate import GatePolicy, decide
from evaluation.metrics import calibration_intercept
from knowledge.calculators.lace import lace_index
from learning.retraining import (
    MAX_SERVED_WEIGHT,
    recalibrate_champion,
    served_weight,
    served_window_start,
)
from models.cohort import Cohort, Example
from models.features import FEATURE_NAMES
from models.registry import MlflowLocation
from models.serving import load_served_model
from models.tasks import READMISSION_30D
from models.training import TrainingOptions, temporal_split, train_task

START = datetime(2021, 1, 1, tzinfo=UTC)


def _example(day: int, label: int, heart_failure: int = 0, weight: float = 1.0) -> Example:
    features = dict.fromkeys(FEATURE_NAMES, 0.0) | {
        "heart_failure": float(heart_failure),
        "age_years": 60.0,
    }
    return Example(
        patient_key=f"p{day}-{label}-{heart_failure}",
        encounter=f"Encounter/{day}",
        predicted_at=START + timedelta(days=day),
        features=features,
        label=label,
        lace_score=5 + 5 * heart_failure,
        sex="female",
        age_band="65+",
        weight=weight,
    )


def test_the_gate_window_is_the_latest_served_discharges_with_enough_events():
    served = [_example(day, label=int(day % 4 == 0)) for day in range(200)]
    # Latest 30%: days 140..199, of which 15 are events (days divisible by 4).
    assert served_window_start(served, 0.3, min_events=10) == START + timedelta(days=140)
    assert served_window_start(served, 0.3, min_events=16) is None  # too few events yet
    assert served_window_start([], 0.3) is None


def test_served_examples_carry_the_chosen_share_of_the_training_weight():
    weight = served_weight(original=1000, served=400, share=0.5)
    assert weight == pytest.approx(2.5)
    assert 400 * weight / (400 * weight + 1000) == pytest.approx(0.5)
    assert served_weight(1000, 2000, 0.5) == 1.0  # never below the original records' weight
    assert served_weight(1000, 10, 0.5) == MAX_SERVED_WEIGHT  # ten examples cannot dominate
    assert served_weight(1000, 0, 0.5) == 1.0


def test_a_split_at_a_given_time_keeps_everything_before_it_for_training():
    examples = [_example(day, 0) for day in range(10)]
    train, test, cutoff = temporal_split(examples, 0.3, START + timedelta(days=4))
    assert cutoff == START + timedelta(days=4)
    assert [e.predicted_at.day for e in train] == [1, 2, 3, 4]
    assert len(test) == 6


def _world(rng: random.Random, days: range, risk: dict[int, float], weight: float) -> list[Example]:
    found = []
    for day in days:
        for _ in range(4):
            hf = int(rng.random() < 0.5)
            found.append(_example(day, int(rng.random() < risk[hf]), hf, weight))
    return found


def test_training_honours_sample_weights(tmp_path):
    """Old records where heart failure goes with fewer events (its coefficient may not turn
    negative, so it stays at no effect), then a served period where it goes with more:
    weighted up, the served period makes heart failure raise the risk."""
    rng = random.Random(3)
    old = _world(rng, range(0, 300), {0: 0.25, 1: 0.08}, 1.0)
    recent = {0: 0.08, 1: 0.4}
    test_from = START + timedelta(days=360)

    def heart_failure_raises_risk(served_weight: float) -> tuple[bool, float]:
        served = _world(random.Random(4), range(300, 400), recent, served_weight)
        location = MlflowLocation(
            f"sqlite:///{tmp_path / f'w{served_weight}.db'}", tmp_path / f"w{served_weight}"
        )
        result = train_task(
            READMISSION_30D,
            Cohort(examples=old + served, patients=len(old + served)),
            location,
            TrainingOptions(bootstrap_rounds=20, test_from=test_from),
        )
        model = load_served_model(location, READMISSION_30D.registered_model, result.version)
        base = dict.fromkeys(FEATURE_NAMES, 0.0) | {"age_years": 60.0}
        with_hf = model.model.assess([(base | {"heart_failure": 1.0})[n] for n in FEATURE_NAMES])
        without = model.model.assess([base[n] for n in FEATURE_NAMES])
        test = [e for e in served if e.predicted_at >= test_from]
        risks = model.model.predict_proba(
            np.array([[e.features[n] for n in FEATURE_NAMES] for e in test])
        )[:, 1]
        y = np.array([e.label for e in test], dtype=float)
        return with_hf[0] > without[0], calibration_intercept(y, risks)

    unweighted_direction, unweighted_intercept = heart_failure_raises_risk(1.0)
    weighted_direction, weighted_intercept = heart_failure_raises_risk(10.0)
    assert not unweighted_direction and weighted_direction
    assert abs(weighted_intercept) < abs(unweighted_intercept)


def _lace_examples(days: range, shift: float, seed: int) -> list[Example]:
    """Discharges whose outcome follows a logistic model on the LACE index, its log-odds
    shifted by ``shift`` (a clinic whose baseline risk differs)."""
    rng = np.random.default_rng(seed)
    found = []
    for day in days:
        for k in range(4):
            stay, acute, charlson, ed = (
                int(rng.integers(0, 15)),
                int(rng.integers(0, 2)),
                int(rng.integers(0, 6)),
                int(rng.integers(0, 5)),
            )
            lace = lace_index(
                length_of_stay_days=stay,
                acute_admission=bool(acute),
                charlson=charlson,
                ed_visits_6_months=ed,
            ).score
            features = dict.fromkeys(FEATURE_NAMES, 0.0) | {
                "length_of_stay_days": float(stay),
                "acute_admission": float(acute),
                "charlson_index": float(charlson),
                "ed_visits_6m": float(ed),
                "age_years": 60.0,
            }
            risk = 1 / (1 + np.exp(-(-4.0 + 0.2 * lace + shift)))
            found.append(
                Example(
                    patient_key=f"p{day}-{k}",
                    encounter=f"Encounter/{day}-{k}",
                    predicted_at=START + timedelta(days=day),
                    features=features,
                    label=int(rng.uniform() < risk),
                    lace_score=lace,
                    sex="female",
                    age_band="45-64",
                )
            )
    return found


def test_a_miscalibrated_champion_raises_an_alert_and_is_recalibrated(tmp_path):
    """The clinic's baseline risk rose: the champion ranks as well as before but
    underestimates. The gate alerts on the champion itself, and a recalibration of it is
    registered (the ranking unchanged, the calibration restored)."""
    location = MlflowLocation(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "artifacts")
    task = READMISSION_30D
    first = train_task(
        task,
        Cohort(examples=_lace_examples(range(0, 400), 0.0, 1), patients=1600),
        location,
        TrainingOptions(bootstrap_rounds=20),
    )
    champion = load_served_model(location, task.registered_model, first.version)
    window = _lace_examples(range(400, 600), 1.5, 2)
    X = np.array([[e.features[n] for n in FEATURE_NAMES] for e in window])
    y = np.array([e.label for e in window], dtype=float)
    p_old = champion.model.predict_proba(X)[:, 1]
    patients = [e.patient_key for e in window]
    gate = decide(y, p_old, p_old, {}, GatePolicy(bootstrap_rounds=100), patients=patients)
    assert any("intercept" in alert for alert in gate.champion_alerts)

    version = recalibrate_champion(
        task, location, first.version, champion.model, champion.metadata, window, y
    )
    assert version != first.version
    recalibrated = load_served_model(location, task.registered_model, version)
    p_new = recalibrated.model.predict_proba(X)[:, 1]
    assert recalibrated.model.method in {"recalibration-in-the-large", "logistic-recalibration"}
    assert abs(calibration_intercept(y, p_new)) < 0.1 < 1.0 < calibration_intercept(y, p_old)
    # The same ranking (tied LACE scores may differ by rounding in the last digit).
    assert roc_auc_score(y, p_new) == pytest.approx(roc_auc_score(y, p_old), abs=1e-3)
    assert recalibrated.threshold == champion.threshold
    registered = location.client().get_model_version(task.registered_model, version)
    assert registered.tags["updated_from"] == f"v{first.version}"
    assert f"champion v{first.version}" in registered.description
    assert recalibrated.model_card["recalibration"]["of_version"] == first.version

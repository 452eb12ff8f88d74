"""Evidence first, then local learning: the closed test chooses the simplest update the data
support, known risk factors keep their direction, and the model explains itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from models.features import FEATURE_NAMES
from models.updating import (
    DESIGN,
    NON_NEGATIVE,
    Reference,
    UpdatedRiskModel,
    choose_update,
    design_matrix,
    fit_update,
)

COLUMN = {name: j for j, name in enumerate(FEATURE_NAMES)}


def _discharges(n: int, seed: int) -> np.ndarray:
    """Feature rows with LACE's inputs and a few other features spread over their ranges."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, len(FEATURE_NAMES)))
    X[:, COLUMN["length_of_stay_days"]] = rng.integers(0, 15, n)
    X[:, COLUMN["acute_admission"]] = rng.integers(0, 2, n)
    X[:, COLUMN["charlson_index"]] = rng.integers(0, 6, n)
    X[:, COLUMN["ed_visits_6m"]] = rng.integers(0, 5, n)
    X[:, COLUMN["age_years"]] = rng.integers(20, 90, n)
    X[:, COLUMN["heart_failure"]] = rng.integers(0, 2, n)
    X[:, COLUMN["active_conditions"]] = rng.integers(0, 10, n)
    return X


def _lace(X: np.ndarray) -> np.ndarray:
    return design_matrix(X)[:, :4].sum(axis=1)


def _outcomes(log_odds: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=len(log_odds)) < expit(log_odds)).astype(float)


def test_data_from_a_logistic_model_on_lace_choose_logistic_recalibration():
    X = _discharges(3000, 1)
    truth = -4.0 + 0.2 * _lace(X)
    choice = choose_update(X, _outcomes(truth, 2), Reference.lace_index())
    assert choice.method == "logistic-recalibration"
    # No new predictor was needed: the extension was tested and not significantly better.
    (test,) = choice.comparisons
    assert test.simpler == "logistic-recalibration" and test.p_value >= choice.alpha
    coefficients = choice.model.coefficient_table()
    assert coefficients["lace_length_points"] == pytest.approx(0.2, abs=0.05)
    assert all(coefficients[name] == coefficients["lace_length_points"] for name in DESIGN[:4])


def test_a_predictor_beyond_lace_is_added_by_extension():
    X = _discharges(3000, 3)
    truth = -4.0 + 0.2 * _lace(X) + 1.5 * X[:, COLUMN["heart_failure"]]
    choice = choose_update(X, _outcomes(truth, 4), Reference.lace_index())
    assert choice.method == "extension"
    assert all(c.p_value < choice.alpha for c in choice.comparisons)
    assert 0 < choice.shrinkage < 1
    assert choice.model.coefficient_table()["heart_failure"] == pytest.approx(1.5, abs=0.4)


def test_an_update_of_a_model_is_as_small_as_the_data_allow():
    """A model updated to data from itself stays itself; a shifted baseline risk needs only a
    new intercept; stronger effects of the same predictors, intercept and slope."""
    X = _discharges(3000, 5)
    y = _outcomes(-4.0 + 0.2 * _lace(X), 6)
    model = choose_update(X, y, Reference.lace_index()).model
    reference = Reference.of(model)
    lp = model.linear_predictor(X)
    same = choose_update(X, _outcomes(lp, 7), reference)
    assert same.method == "original"
    assert same.model.coefficient_table() == model.coefficient_table()
    shifted = choose_update(X, _outcomes(lp + 1.0, 8), reference)
    assert shifted.method == "recalibration-in-the-large"
    assert shifted.model.intercept - model.intercept == pytest.approx(1.0, abs=0.2)
    steeper = choose_update(X, _outcomes(-2.5 + 2.0 * (lp - lp.mean()), 9), reference)
    assert steeper.method == "logistic-recalibration"


def test_known_risk_factors_keep_their_direction_when_the_data_invert_them():
    """Heart failure and the comorbidity points go with *fewer* events in these data (as in
    the synthetic records), age with more: the extension takes age, and the inverted risk
    factors stop at zero instead of turning negative."""
    X = _discharges(3000, 10)
    truth = (
        -2.0
        + 0.3 * design_matrix(X)[:, 3]
        - 0.4 * design_matrix(X)[:, 2]
        - 1.5 * X[:, COLUMN["heart_failure"]]
        + 0.04 * (X[:, COLUMN["age_years"]] - 55)
    )
    choice = choose_update(X, _outcomes(truth, 11), Reference.lace_index())
    assert choice.method == "extension"
    coefficients = choice.model.coefficient_table()
    for name in NON_NEGATIVE:
        assert coefficients[name] >= 0, name
    assert coefficients["heart_failure"] == 0 and coefficients["lace_comorbidity_points"] == 0
    # The patient with heart failure is not given a lower risk for it.
    row = X[0].copy()
    row[COLUMN["heart_failure"]] = 0
    with_hf = row.copy()
    with_hf[COLUMN["heart_failure"]] = 1
    assert choice.model.assess(with_hf)[0] >= choice.model.assess(row)[0]


def test_contributions_are_the_log_odds_change_of_setting_one_feature_to_its_mean():
    X = _discharges(500, 12)
    model = UpdatedRiskModel(
        -3.0,
        [0.1 * (j + 1) for j in range(len(DESIGN))],
        "extension",
        list(FEATURE_NAMES),
        list(X.mean(axis=0)),
    )
    row = X[3]
    risk, contributions = model.assess(row)
    assert risk == pytest.approx(model.predict_proba(np.array([row]))[0, 1], abs=1e-12)
    for j, name in enumerate(FEATURE_NAMES):
        occluded = row.copy()
        occluded[j] = model.reference[j]
        expected = (
            model.linear_predictor(np.array([row]))[0]
            - model.linear_predictor(np.array([occluded]))[0]
        )
        assert contributions[name] == pytest.approx(expected, abs=1e-12)


def test_logistic_recalibration_of_a_model_with_an_intercept_predicts_what_it_fitted():
    """A trained model has an intercept of its own: the recalibrated model's intercept is the
    fitted one, not the old intercept rescaled by the new slope."""
    X = _discharges(4000, 7)
    lace_weights = np.array([0.2 if j < 4 else 0.0 for j in range(len(DESIGN))])
    reference = Reference(-3.0, lace_weights, is_risk_model=True)
    truth = -1.5 + 0.5 * (design_matrix(X) @ lace_weights)
    y = _outcomes(truth, 8)
    model = fit_update("logistic-recalibration", X, y, reference)
    assert model.intercept == pytest.approx(-1.5, abs=0.3)
    assert model.coefficient_table()["lace_length_points"] == pytest.approx(0.1, abs=0.03)
    predicted = expit(model.intercept + design_matrix(X) @ np.asarray(model.coefficients))
    assert predicted.mean() == pytest.approx(y.mean(), abs=0.01)

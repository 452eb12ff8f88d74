"""Evidence first, then local learning: the LACE index, updated to local outcomes.

The starting point is the published evidence: the LACE index (van Walraven et al., CMAJ
2010;182(6):551-557, https://doi.org/10.1503/cmaj.091117), whose points weigh length of
stay, acuity, comorbidity and emergency visits. The paper's own conversion of the score to
a probability could not be verified here, so no published intercept or slope is used: the
LACE score is the linear predictor, and its intercept and slope are estimated on local
data (that is logistic recalibration, the first updating step for a first model).

A later model starts from the one it updates (the champion). The updating methods are the
standard ones (Steyerberg, Clinical Prediction Models, 2nd ed. 2019, ch. 20; Vergouwe et
al., Stat Med 2017;36:4529-4539, https://doi.org/10.1002/sim.7179), from least to most
extensive:

- ``original``: the reference model unchanged (only when it is already a risk model);
- ``recalibration-in-the-large``: a new intercept, the reference's linear predictor as offset;
- ``logistic-recalibration``: a new intercept and one slope on the reference's predictor;
- ``revision``: the LACE components' coefficients re-estimated one by one;
- ``extension``: revision plus the other features as new predictors.

The method is chosen by the closed testing procedure of Vergouwe et al. 2017: the most
extensive model is compared with each simpler one, in order, by a likelihood-ratio test;
the simplest one not significantly worse (at ``alpha``) is chosen. Revision and extension
are shrunk towards the logistic recalibration by the heuristic factor
(chi2 - df) / chi2 of their likelihood-ratio test against it (van Houwelingen and Le
Cessie, Stat Med 1990), and their intercept is re-estimated after shrinking.

Known risk factors keep their direction by constraint, not by refusal: the fits bound the
coefficients of the LACE components, of prior admissions, age and of heart failure, chronic
pulmonary disease, diabetes, renal disease and cancer at zero from below (a bounded
maximum likelihood fit, L-BFGS-B). Shrinking towards the recalibrated model is a convex
combination of two non-negative vectors, so it keeps the signs. With constraints on the
boundary the likelihood-ratio statistic is conservative (a chi-bar-squared mixture); the
test uses the plain chi-squared reference distribution.

With sample weights (retraining weights served discharges up), the weights are scaled to
sum to the number of examples, so the likelihood-ratio statistics keep the sample's size;
the tests are then approximate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import chi2
from sklearn.base import BaseEstimator, ClassifierMixin

from knowledge.calculators.lace import lace_index
from models.features import FEATURE_NAMES

LACE_COMPONENTS: tuple[str, ...] = (
    "lace_length_points",
    "lace_acuity_points",
    "lace_comorbidity_points",
    "lace_ed_points",
)
"""The LACE index's four parts, in points, as the calculator computes them."""
LACE_INPUTS: frozenset[str] = frozenset(
    {"length_of_stay_days", "acute_admission", "charlson_index", "ed_visits_6m"}
)
EXTENSION_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in LACE_INPUTS)
"""Features beyond LACE's inputs: candidate new predictors for the extension."""
DESIGN: tuple[str, ...] = LACE_COMPONENTS + EXTENSION_FEATURES
NON_NEGATIVE: frozenset[str] = frozenset(
    {
        *LACE_COMPONENTS,
        "age_years",
        "admissions_12m",
        "heart_failure",
        "chronic_pulmonary_disease",
        "diabetes",
        "renal_disease",
        "any_tumour",
    }
)
"""Risk factors whose coefficient may not be negative: the LACE components (van Walraven
2010) and the comorbidities, age and prior admissions that raise readmission risk in the
same literature (they make up the Charlson score and LACE+)."""

METHODS: tuple[str, ...] = (
    "original",
    "recalibration-in-the-large",
    "logistic-recalibration",
    "revision",
    "extension",
)
_LENGTH = FEATURE_NAMES.index("length_of_stay_days")
_ACUTE = FEATURE_NAMES.index("acute_admission")
_CHARLSON = FEATURE_NAMES.index("charlson_index")
_ED = FEATURE_NAMES.index("ed_visits_6m")
_EXTENSION = [FEATURE_NAMES.index(n) for n in EXTENSION_FEATURES]


def design_matrix(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows of features (FEATURE_NAMES order) as the LACE components' points followed by
    the extension features."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    points = np.array(
        [
            [
                (
                    result := lace_index(
                        length_of_stay_days=int(row[_LENGTH]),
                        acute_admission=bool(row[_ACUTE]),
                        charlson=int(row[_CHARLSON]),
                        ed_visits_6_months=int(row[_ED]),
                    )
                ).length_of_stay_points,
                result.acuity_points,
                result.comorbidity_points,
                result.ed_visit_points,
            ]
            for row in X
        ],
        dtype=float,
    ).reshape(len(X), len(LACE_COMPONENTS))
    return np.column_stack([points, X[:, _EXTENSION]])


class UpdatedRiskModel(ClassifierMixin, BaseEstimator):
    """A logistic model on LACE's components and the other features: risk = expit(intercept
    + coefficients . design_matrix(features)). Stored in the registry like any estimator."""

    def __init__(
        self,
        intercept: float,
        coefficients: Sequence[float],
        method: str,
        feature_names: Sequence[str],
        reference: Sequence[float],
    ) -> None:
        self.intercept = intercept
        self.coefficients = coefficients
        self.method = method
        self.feature_names = feature_names
        self.reference = reference

    @property
    def classes_(self) -> NDArray[np.int64]:
        return np.array([0, 1])

    def _matrix(self, X: object) -> NDArray[np.float64]:
        if hasattr(X, "columns"):
            X = X[list(self.feature_names)].to_numpy(dtype=float)  # type: ignore[index,attr-defined]
        return np.asarray(X, dtype=float)

    def linear_predictor(self, X: object) -> NDArray[np.float64]:
        return self.intercept + design_matrix(self._matrix(X)) @ np.asarray(self.coefficients)

    def predict_proba(self, X: object) -> NDArray[np.float64]:
        risk = expit(self.linear_predictor(X))
        return np.column_stack([1 - risk, risk])

    def predict(self, X: object) -> NDArray[np.int64]:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def assess(self, row: Sequence[float]) -> tuple[float, dict[str, float]]:
        """One patient's risk and each feature's effect on its log-odds: the change when that
        feature alone is set to the training mean (for LACE's inputs, through its points)."""
        x = np.asarray(row, dtype=float)
        occluded = np.tile(x, (len(x) + 1, 1))
        for j, mean in enumerate(self.reference):
            occluded[j + 1, j] = mean
        log_odds = self.linear_predictor(occluded)
        return float(expit(log_odds[0])), {
            name: float(log_odds[0] - log_odds[j + 1]) for j, name in enumerate(self.feature_names)
        }

    def coefficient_table(self) -> dict[str, float]:
        return {"intercept": float(self.intercept)} | {
            name: float(value) for name, value in zip(DESIGN, self.coefficients, strict=True)
        }


@dataclass(frozen=True)
class Reference:
    """The model being updated, as an intercept and coefficients over DESIGN."""

    intercept: float
    coefficients: NDArray[np.float64]
    is_risk_model: bool
    """False for the bare LACE score: its points are not log-odds, so neither the original
    nor a new intercept alone can make it a risk."""

    @classmethod
    def lace_index(cls) -> Reference:
        weights = np.array([1.0 if n in LACE_COMPONENTS else 0.0 for n in DESIGN])
        return cls(0.0, weights, is_risk_model=False)

    @classmethod
    def of(cls, model: UpdatedRiskModel) -> Reference:
        return cls(float(model.intercept), np.asarray(model.coefficients, float), True)


@dataclass(frozen=True)
class Comparison:
    simpler: str
    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class UpdateChoice:
    method: str
    model: UpdatedRiskModel
    log_likelihoods: dict[str, float]
    comparisons: list[Comparison]
    """Each simpler method against the most extensive one, in the order tested."""
    shrinkage: float | None
    alpha: float
    parameters: dict[str, int] = field(default_factory=dict)


def _weighted_log_likelihood(y: NDArray, eta: NDArray, w: NDArray) -> float:
    return float(np.sum(w * (y * eta - np.logaddexp(0, eta))))


def _fit(
    columns: NDArray[np.float64],
    offset: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    lower: Sequence[float | None],
) -> tuple[NDArray[np.float64], float]:
    """Bounded maximum likelihood: intercept and coefficients of ``columns`` (with ``offset``);
    columns are standardised while fitting (the optimiser's steps are then comparable)."""
    scale = columns.std(axis=0) if columns.size else np.ones(0)
    scale = np.where(scale > 0, scale, 1.0)
    design = np.column_stack([np.ones(len(y)), columns / scale])

    def loss(beta: NDArray) -> tuple[float, NDArray]:
        eta = design @ beta + offset
        return -_weighted_log_likelihood(y, eta, w), -(design.T @ (w * (y - expit(eta))))

    # A column without variation carries no information (and would be confounded with the
    # intercept): its coefficient stays 0.
    bounds = [(None, None)] + [
        (0.0, 0.0) if spread == 0 else (low, None)
        for low, spread in zip(lower, columns.std(axis=0), strict=True)
    ]
    start = np.zeros(design.shape[1])
    found = minimize(
        loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000}
    )
    beta = found.x.copy()
    beta[1:] = beta[1:] / scale
    return beta, -float(found.fun)


def _lower(names: Sequence[str]) -> list[float | None]:
    return [0.0 if n in NON_NEGATIVE else None for n in names]


@dataclass(frozen=True)
class _Fit:
    log_likelihood: float
    coefficients: NDArray[np.float64]
    """Intercept first, then one per DESIGN column."""
    parameters: int
    """How many were estimated (the likelihood-ratio test's degrees of freedom)."""


@dataclass(frozen=True)
class _Sample:
    D: NDArray[np.float64]
    y: NDArray[np.float64]
    w: NDArray[np.float64]


def _sample(
    X: NDArray[np.float64], y: NDArray[np.float64], weights: NDArray[np.float64] | None
) -> _Sample:
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    return _Sample(design_matrix(X), y, w * len(y) / w.sum())


def _fit_updates(
    sample: _Sample, reference: Reference, most_extensive: str = "extension"
) -> dict[str, _Fit]:
    """Every update method applicable to ``reference`` up to ``most_extensive``, fitted by
    (bounded) maximum likelihood."""
    D, y, w = sample.D, sample.y, sample.w
    n_lace = len(LACE_COMPONENTS)
    ref_lp = reference.intercept + D @ reference.coefficients
    zero = np.zeros(len(y))
    none = np.empty((len(y), 0))
    fits: dict[str, _Fit] = {}
    if reference.is_risk_model:
        fits["original"] = _Fit(
            _weighted_log_likelihood(y, ref_lp, w),
            np.concatenate([[reference.intercept], reference.coefficients]),
            0,
        )
        (a,), ll = _fit(none, ref_lp, y, w, [])
        fits["recalibration-in-the-large"] = _Fit(
            ll, np.concatenate([[reference.intercept + a], reference.coefficients]), 1
        )
    # logit = a + b * (the reference's linear predictor without its intercept): the new
    # intercept is a itself, the reference's own intercept is replaced, not rescaled.
    (a, b), ll = _fit((ref_lp - reference.intercept)[:, None], zero, y, w, [0.0])
    fits["logistic-recalibration"] = _Fit(ll, np.concatenate([[a], b * reference.coefficients]), 2)
    if most_extensive == "logistic-recalibration":
        return fits
    # Revision re-estimates the LACE components one by one; whatever the reference adds
    # beyond LACE (an earlier extension) keeps its shape and gets one coefficient.
    reference_extension = reference.coefficients[n_lace:]
    if np.any(reference_extension != 0):
        beta, ll = _fit(
            np.column_stack([D[:, :n_lace], D[:, n_lace:] @ reference_extension]),
            zero,
            y,
            w,
            [*_lower(LACE_COMPONENTS), 0.0],
        )
        coefficients = np.concatenate([beta[:-1], beta[-1] * reference_extension])
    else:
        beta, ll = _fit(D[:, :n_lace], zero, y, w, _lower(LACE_COMPONENTS))
        coefficients = np.concatenate([beta, np.zeros(len(EXTENSION_FEATURES))])
    fits["revision"] = _Fit(ll, coefficients, len(beta))
    if most_extensive == "revision":
        return fits
    beta, ll = _fit(D, zero, y, w, _lower(DESIGN))
    fits["extension"] = _Fit(ll, beta, len(beta))
    return fits


def closed_test(fits: dict[str, _Fit], alpha: float) -> tuple[str, list[Comparison]]:
    """Vergouwe et al. 2017: the most extensive update against each simpler one, from the
    least extensive; the first not significantly worse is chosen (else the most extensive)."""
    order = [m for m in METHODS if m in fits]
    most = fits[order[-1]]
    comparisons = []
    for method in order[:-1]:
        statistic = max(0.0, 2 * (most.log_likelihood - fits[method].log_likelihood))
        df = most.parameters - fits[method].parameters
        comparisons.append(Comparison(method, statistic, df, float(chi2.sf(statistic, df))))
        if comparisons[-1].p_value >= alpha:
            return method, comparisons
    return order[-1], comparisons


def _finish(
    method: str, fits: dict[str, _Fit], sample: _Sample, X: NDArray[np.float64]
) -> tuple[UpdatedRiskModel, float | None]:
    """The chosen update as a model; revision and extension shrunk towards the logistic
    recalibration (heuristic factor) with the intercept re-estimated after shrinking."""
    coefficients = fits[method].coefficients
    shrinkage = None
    if method in ("revision", "extension"):
        base, chosen = fits["logistic-recalibration"], fits[method]
        statistic = 2 * (chosen.log_likelihood - base.log_likelihood)
        df = chosen.parameters - base.parameters
        shrinkage = max(0.0, (statistic - df) / statistic) if statistic > 0 else 0.0
        slopes = base.coefficients[1:] + shrinkage * (coefficients[1:] - base.coefficients[1:])
        (a,), _ = _fit(np.empty((len(sample.y), 0)), sample.D @ slopes, sample.y, sample.w, [])
        coefficients = np.concatenate([[a], slopes])
    model = UpdatedRiskModel(
        float(coefficients[0]),
        [float(c) for c in coefficients[1:]],
        method,
        list(FEATURE_NAMES),
        [float(v) for v in np.asarray(X, dtype=float).mean(axis=0)],
    )
    return model, shrinkage


def choose_update(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    reference: Reference,
    *,
    weights: NDArray[np.float64] | None = None,
    alpha: float = 0.05,
    most_extensive: str = "extension",
) -> UpdateChoice:
    """Fit every applicable update of ``reference`` to (X, y), up to ``most_extensive``
    (``logistic-recalibration`` to recalibrate only), and choose by closed testing."""
    if most_extensive not in METHODS[2:]:
        raise ValueError(f"the most extensive update must be one of {METHODS[2:]}")
    sample = _sample(X, y, weights)
    fits = _fit_updates(sample, reference, most_extensive)
    method, comparisons = closed_test(fits, alpha)
    model, shrinkage = _finish(method, fits, sample, X)
    return UpdateChoice(
        method=method,
        model=model,
        log_likelihoods={m: f.log_likelihood for m, f in fits.items()},
        comparisons=comparisons,
        shrinkage=shrinkage,
        alpha=alpha,
        parameters={m: f.parameters for m, f in fits.items()},
    )


def fit_update(
    method: str,
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    reference: Reference,
    weights: NDArray[np.float64] | None = None,
) -> UpdatedRiskModel:
    """One given update method on (X, y), without testing (to cross-validate a choice)."""
    sample = _sample(X, y, weights)
    return _finish(method, _fit_updates(sample, reference), sample, X)[0]

"""Training a task's models on a cohort, evaluating them against LACE and logging it all to MLflow.

Candidates are a logistic regression (scaled features) and gradient-boosted trees, both
with balanced class weights. Each is calibrated by Platt scaling on out-of-fold decision
values (folds grouped by patient, so no patient is in both halves). The candidate with the
better out-of-fold AUROC on the training period is selected; the later test period is
touched only to report, never to choose. The decision threshold is picked by the decision
curve of the out-of-fold calibrated risks, within the task's clinically set range.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from evaluation.fairness import fairness_gaps, subgroup_performance
from evaluation.metrics import (
    Estimate,
    auroc_difference,
    choose_threshold,
    decision_curve,
    evaluate_risks,
    net_benefit,
)
from evaluation.model_card import build_model_card, model_card_markdown
from evaluation.plots import calibration_plot, decision_curve_plot, precision_recall_plot, roc_plot
from models.cohort import Cohort, Example, feature_matrix
from models.features import FEATURE_LABELS, FEATURE_NAMES, FEATURE_SET_VERSION
from models.registry import CHALLENGER, CHAMPION, MlflowLocation, alias_version, set_alias
from models.risk_model import SKOPS_TRUSTED_TYPES, RiskModel
from models.tasks import PredictionTask

THRESHOLD_GRID = np.round(np.arange(0.01, 0.51, 0.01), 2)
LACE_HIGH_RISK_MIN = 10
"""The conventional LACE high-risk cut-off (Fry 2020), the band the card compares with."""


@dataclass(frozen=True)
class TrainingOptions:
    seed: int = 42
    test_fraction: float = 0.3
    folds: int = 5
    bootstrap_rounds: int = 500
    promote: bool = False
    """Make the new version champion. Otherwise it becomes challenger (champion if none)."""
    test_from: datetime | None = None
    """Start of the test period; by default the latest ``test_fraction`` of discharges."""


@dataclass(frozen=True)
class TrainingResult:
    registered_model: str
    version: str
    alias: str
    run_id: str
    selected: str
    cv_auroc: Mapping[str, float]
    test_metrics: Mapping[str, Estimate]
    lace_auroc: Estimate
    auroc_gain_over_lace: Estimate
    threshold: float | None
    cutoff: datetime


def candidate_models(seed: int) -> dict[str, BaseEstimator]:
    return {
        "logistic-regression": make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
        ),
        "gradient-boosting": HistGradientBoostingClassifier(
            class_weight="balanced",
            max_depth=3,
            learning_rate=0.05,
            max_iter=200,
            min_samples_leaf=20,
            random_state=seed,
        ),
    }


def temporal_split(
    examples: list[Example], test_fraction: float, test_from: datetime | None = None
) -> tuple[list[Example], list[Example], datetime]:
    """Discharges before the cut-off train, the rest test. The cut-off is ``test_from`` or
    else the discharge time that leaves the latest ``test_fraction`` for testing."""
    ordered = sorted(examples, key=lambda e: e.predicted_at)
    cutoff = test_from or ordered[int(len(ordered) * (1 - test_fraction))].predicted_at
    return (
        [e for e in ordered if e.predicted_at < cutoff],
        [e for e in ordered if e.predicted_at >= cutoff],
        cutoff,
    )


@dataclass(frozen=True)
class _Fitted:
    name: str
    model: RiskModel
    oof_risk: np.ndarray
    cv_auroc: float


def _weight_params(estimator: BaseEstimator, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Sample weights as the estimator's fit takes them (a pipeline: for its final step)."""
    if isinstance(estimator, Pipeline):
        return {f"{estimator.steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def _fit(
    name: str,
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    groups: list[int],
    options: TrainingOptions,
) -> _Fitted:
    from sklearn.metrics import roc_auc_score

    splits = list(
        StratifiedGroupKFold(options.folds, shuffle=True, random_state=options.seed).split(
            X, y, groups
        )
    )
    fit_params = _weight_params(estimator, weights)
    with warnings.catch_warnings():
        # Without metadata routing the calibrator cannot see that a pipeline takes weights
        # and warns that only calibration uses them; the weights reach its final step
        # through fit_params (sliced per fold), so both are weighted.
        warnings.filterwarnings("ignore", message="Since Pipeline does not appear")
        calibrated = CalibratedClassifierCV(
            estimator, method="sigmoid", cv=splits, ensemble=False
        ).fit(X, y, **({"sample_weight": weights} | fit_params))
    # The calibrator was fitted on exactly these out-of-fold decision values (same splits).
    oof_decision = cross_val_predict(
        estimator, X, y, cv=splits, method="decision_function", params=fit_params
    )
    oof_risk = calibrated.calibrated_classifiers_[0].calibrators[0].predict(oof_decision)
    model = RiskModel(calibrated, list(FEATURE_NAMES), [float(v) for v in X.mean(axis=0)])
    auroc = roc_auc_score(y, oof_decision, sample_weight=weights)
    return _Fitted(name, model, oof_risk, float(auroc))


def _band_rates(examples: list[Example]) -> dict[str, float | None]:
    def rate(selected: list[Example]) -> float | None:
        return sum(e.label for e in selected) / len(selected) if selected else None

    return {
        "all": rate(examples),
        "lace_high": rate([e for e in examples if e.lace_score >= LACE_HIGH_RISK_MIN]),
        "lace_low": rate([e for e in examples if e.lace_score < LACE_HIGH_RISK_MIN]),
    }


def _simple_params(estimator: BaseEstimator) -> dict[str, Any]:
    return {
        key: value
        for key, value in estimator.get_params().items()
        if isinstance(value, str | int | float | bool) or value is None
    }


def train_task(
    task: PredictionTask,
    cohort: Cohort,
    location: MlflowLocation,
    options: TrainingOptions = TrainingOptions(),
    *,
    progress: Callable[[str], Any] = lambda _: None,
) -> TrainingResult:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    train, test, cutoff = temporal_split(cohort.examples, options.test_fraction, options.test_from)
    if not train or not test or len({e.label for e in train}) < 2:
        raise ValueError("the cohort is too small or has only one outcome class to train on")
    X, y = np.array(feature_matrix(train)), np.array([e.label for e in train])
    weights = np.array([e.weight for e in train], dtype=float)
    X_test, y_test = np.array(feature_matrix(test)), np.array([e.label for e in test])
    # Folds group by patient; numbering patients by first appearance (not by their keyed
    # pseudonym) keeps the folds, and so the model, the same whatever the site's secret key.
    numbering: dict[str, int] = {}
    groups = [numbering.setdefault(e.patient_key, len(numbering)) for e in train]
    lace_test = np.array([e.lace_score for e in test], dtype=float)
    progress(
        f"cohort: {len(cohort.examples)} discharges of {cohort.patients} patients, "
        f"train {len(train)} ({int(y.sum())} events) before {cutoff:%Y-%m-%d}, "
        f"test {len(test)} ({int(y_test.sum())} events)"
    )

    fitted = []
    for name, estimator in candidate_models(options.seed).items():
        fitted.append(_fit(name, estimator, X, y, weights, groups, options))
        progress(f"{name}: out-of-fold AUROC {fitted[-1].cv_auroc:.3f}")
    best = max(fitted, key=lambda f: f.cv_auroc)
    curve = decision_curve(y, best.oof_risk, THRESHOLD_GRID)
    threshold = choose_threshold(curve, *task.decision_range)
    lace_auroc = evaluate_risks(
        y_test, lace_test, rounds=options.bootstrap_rounds, seed=options.seed, names=("auroc",)
    )["auroc"]

    window = {
        "dataset.sha256": cohort.digest(),
        "dataset.window_start": train[0].predicted_at.isoformat(),
        "dataset.test_from": cutoff.isoformat(),
        "dataset.window_end": test[-1].predicted_at.isoformat(),
        "feature_set_version": FEATURE_SET_VERSION,
    }
    frame = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    test_frame = pd.DataFrame(X_test, columns=list(FEATURE_NAMES))
    rates = _band_rates(train)
    results: dict[str, tuple[str, dict[str, Estimate], Estimate]] = {}
    with location.active():
        experiment_id = location.experiment_id(task.name)
        for candidate in fitted:
            risk = candidate.model.predict_proba(X_test)[:, 1]
            metrics = evaluate_risks(
                y_test, risk, rounds=options.bootstrap_rounds, seed=options.seed
            )
            gain = auroc_difference(
                y_test, risk, lace_test, rounds=options.bootstrap_rounds, seed=options.seed
            )
            selected = candidate is best
            with mlflow.start_run(experiment_id=experiment_id, run_name=candidate.name) as run:
                mlflow.set_tags(
                    {
                        **window,
                        "task": task.name,
                        "candidate": candidate.name,
                        "selected": str(selected).lower(),
                    }
                )
                mlflow.log_params(
                    {
                        "seed": options.seed,
                        "folds": options.folds,
                        "test_fraction": options.test_fraction,
                        "calibration": "sigmoid (Platt), out-of-fold",
                        "class_weight": "balanced",
                        "sample_weights": ", ".join(
                            f"{w:g} x {n}" for w, n in sorted(Counter(weights.tolist()).items())
                        ),
                        "decision_threshold": threshold,
                        "decision_range": str(task.decision_range),
                        **{
                            f"model.{k}": v
                            for k, v in _simple_params(candidate.model.base).items()
                            if len(str(v)) < 250
                        },
                    }
                )
                mlflow.log_input(
                    mlflow.data.from_pandas(
                        frame.assign(label=y.astype(float)),
                        name=f"{task.name}-train",
                        targets="label",
                    ),
                    context="training",
                )
                mlflow.log_input(
                    mlflow.data.from_pandas(
                        test_frame.assign(label=y_test.astype(float)),
                        name=f"{task.name}-test",
                        targets="label",
                    ),
                    context="test",
                )
                flat = {"cv_auroc": candidate.cv_auroc}
                for metric, estimate in {
                    **metrics,
                    "lace_auroc": lace_auroc,
                    "auroc_gain_over_lace": gain,
                }.items():
                    name = metric if metric.startswith(("lace", "auroc_gain")) else f"test_{metric}"
                    flat |= {
                        name: estimate.value,
                        f"{name}_ci_low": estimate.low,
                        f"{name}_ci_high": estimate.high,
                    }
                if threshold is not None:
                    flat["test_net_benefit_at_threshold"] = net_benefit(y_test, risk, threshold)
                mlflow.log_metrics({k: v for k, v in flat.items() if np.isfinite(v)})
                test_curve = decision_curve(y_test, risk, THRESHOLD_GRID)
                for file, figure in {
                    "plots/roc.png": roc_plot(
                        y_test, {candidate.name: risk, "LACE index": lace_test}
                    ),
                    "plots/precision_recall.png": precision_recall_plot(
                        y_test, {candidate.name: risk, "LACE index": lace_test}
                    ),
                    "plots/calibration.png": calibration_plot(y_test, {candidate.name: risk}),
                    "plots/decision_curve_train_oof.png": decision_curve_plot(
                        decision_curve(y, candidate.oof_risk, THRESHOLD_GRID), threshold
                    ),
                    "plots/decision_curve_test.png": decision_curve_plot(test_curve, threshold),
                }.items():
                    mlflow.log_figure(figure, file)
                subgroups = [
                    *subgroup_performance("sex", [e.sex for e in test], y_test, risk),
                    *subgroup_performance("age band", [e.age_band for e in test], y_test, risk),
                    *subgroup_performance("race", [e.race for e in test], y_test, risk),
                ]
                gaps = fairness_gaps(subgroups)
                mlflow.log_metrics(
                    {
                        f"fairness_gap.{name}.{attribute.replace(' ', '_')}": value
                        for attribute, values in gaps.items()
                        for name, value in values.items()
                        if name != "groups"
                    }
                )
                card = _model_card(
                    task,
                    candidate.name,
                    cohort,
                    train,
                    test,
                    cutoff,
                    metrics,
                    lace_auroc,
                    gain,
                    subgroups,
                    threshold,
                    implausible_directions(candidate.model),
                )
                mlflow.log_dict(card, "model_card.json")
                mlflow.log_text(model_card_markdown(card), "model_card.md")
                if selected:
                    example = frame.head(3)
                    info = mlflow.sklearn.log_model(
                        candidate.model,
                        name="model",
                        serialization_format="skops",
                        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                        input_example=example,
                        signature=infer_signature(
                            example, candidate.model.predict_proba(example)[:, 1]
                        ),
                        pyfunc_predict_fn="predict_proba",
                        pip_requirements=[
                            f"scikit-learn=={_version('scikit-learn')}",
                            f"mlflow=={mlflow.__version__}",
                        ],
                        metadata={
                            "task": task.name,
                            "candidate": candidate.name,
                            "feature_set_version": FEATURE_SET_VERSION,
                            "feature_names": list(FEATURE_NAMES),
                            "feature_labels": dict(FEATURE_LABELS),
                            "decision_threshold": threshold,
                            "observed_rates": rates,
                            "lace_high_risk_min": LACE_HIGH_RISK_MIN,
                            "test_auroc": metrics["auroc"].value,
                            "lace_test_auroc": lace_auroc.value,
                            "trained_before": cutoff.isoformat(),
                            "model_card": card,
                        },
                    )
                    best_run, best_model_uri = run.info.run_id, info.model_uri
            results[candidate.name] = (run.info.run_id, metrics, gain)
            progress(f"{candidate.name}: test AUROC {metrics['auroc']}; LACE {lace_auroc}")
        version = mlflow.register_model(
            best_model_uri, task.registered_model, tags={"run_id": best_run}
        )
    version_id = str(version.version)
    alias = (
        CHAMPION
        if options.promote or alias_version(location, task.registered_model, CHAMPION) is None
        else CHALLENGER
    )
    set_alias(location, task.registered_model, alias, version_id)
    progress(f"registered {task.registered_model} version {version_id} as @{alias}")
    _, best_metrics, best_gain = results[best.name]
    return TrainingResult(
        registered_model=task.registered_model,
        version=version_id,
        alias=alias,
        run_id=best_run,
        selected=best.name,
        cv_auroc={f.name: f.cv_auroc for f in fitted},
        test_metrics=best_metrics,
        lace_auroc=lace_auroc,
        auroc_gain_over_lace=best_gain,
        threshold=threshold,
        cutoff=cutoff,
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


EXPECTED_RISK_FACTORS = (
    "charlson_index",
    "heart_failure",
    "chronic_pulmonary_disease",
    "ed_visits_6m",
    "admissions_12m",
)
"""Features that raise readmission risk in the clinical literature (they make up LACE and
its Charlson component, van Walraven 2010); a model that lowers the risk as they rise is
flagged on its model card."""


def implausible_directions(model: RiskModel) -> list[str]:
    """Expected risk factors whose increase by one, from the average patient, lowers the risk."""
    reference = list(model.reference)
    base = model.assess(reference)[0]
    flagged = []
    for name in EXPECTED_RISK_FACTORS:
        raised = list(reference)
        raised[FEATURE_NAMES.index(name)] += 1.0
        if model.assess(raised)[0] < base:
            flagged.append(name)
    return flagged


def _share(examples: list[Example], attribute: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        key = getattr(example, attribute)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _model_card(
    task: PredictionTask,
    candidate: str,
    cohort: Cohort,
    train: list[Example],
    test: list[Example],
    cutoff: datetime,
    metrics: Mapping[str, Estimate],
    lace_auroc: Estimate,
    gain: Estimate,
    subgroups: list[Any],
    threshold: float | None,
    implausible: list[str],
) -> dict[str, Any]:
    warning = (
        [
            "Against clinical expectation, more of these lowers the predicted risk: "
            + ", ".join(FEATURE_LABELS[name] for name in implausible)
            + ". The association is learnt from the training data (in synthetic data, an "
            "artefact); review the contributions on each card and do not use the model "
            "clinically until it is retrained on local data without this pattern."
        ]
        if implausible
        else []
    )
    return build_model_card(
        details={
            "name": f"{task.registered_model} ({candidate})",
            "developer": "Learning Health System project (open source)",
            "funding_source": "None declared",
            "output": "Calibrated probability of the outcome within "
            f"{task.horizon_days} days, with the features that raised or lowered it for this "
            "patient (occlusion effects on the model's log-odds).",
        },
        purpose={
            "intended_use": task.title + ": to help decide who receives transitional care.",
            "outcome": task.outcome,
            "prediction_time": task.prediction_time,
            "intended_patient_population": "Patients discharged from a hospital stay or an "
            "emergency department visit.",
            "intended_users": "Clinicians and care coordinators planning discharge.",
            "intended_decision_making_role": "Informs; does not replace clinical judgement.",
            "decision_threshold": threshold,
            "threshold_rationale": task.decision_range_rationale,
        },
        development={
            "training_data": f"{cohort.patients} synthetic patients (Synthea FHIR R4 records); "
            f"{len(train)} index discharges before {cutoff:%Y-%m-%d} for training, {len(test)} "
            "later ones for testing.",
            "inclusion_and_exclusion_criteria": {
                "included": "Finished inpatient (IMP) and emergency (EMER) encounters with a start and an end.",
                "excluded": dict(cohort.excluded),
            },
            "input_features": dict(FEATURE_LABELS),
            "use_of_race_ethnicity_language_sexual_orientation_gender_identity_sdoh": "Sex is an "
            "input (as recorded in Patient.gender). Race, ethnicity, language, sexual orientation, "
            "gender identity and social determinants are not inputs.",
            "demographic_representativeness": {
                "training_by_sex": _share(train, "sex"),
                "training_by_age_band": _share(train, "age_band"),
                "training_by_race": _share(train, "race"),
            },
            "relevance_of_training_data_to_deployed_setting": "Synthetic data: the model shows "
            "the pipeline working; it must be retrained and revalidated on the deploying "
            "organisation's own records before clinical use.",
            "bias_mitigation_approach": "Performance and calibration are reported by sex and age "
            "band on the test period; promotion requires review of these subgroups.",
        },
        test_metrics=metrics,
        baseline={
            "baseline": "LACE index (van Walraven 2010), computed by the service's LACE rule",
            "lace_auroc": str(lace_auroc),
            "model_auroc_minus_lace_auroc": str(gain),
        },
        subgroups=subgroups,
        limitations=[
            "Not for patients who are not being discharged, nor for children's hospital care "
            "without local validation.",
            "Trained and tested on synthetic records; not validated on real patients.",
            "Test events are few: confidence intervals are wide.",
            *warning,
        ],
        maintenance="Retrain when feedback and outcomes accumulate; a new version serves only "
        "after its evaluation is reviewed and it is promoted to champion in the MLflow registry.",
    )

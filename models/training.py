"""Training a task's model on a cohort, evaluating it against LACE and logging it all to MLflow.

The model starts from the published evidence, the LACE index, and is updated to the
training data by the standard updating methods, the method chosen by closed testing
(models/updating.py). A first model updates the LACE score itself; a retrained one
updates the champion it may replace (``TrainingOptions.reference``). The out-of-fold risks
of the chosen method (folds grouped by patient, so no patient is in both halves) give
the decision curve on which the threshold is picked, within the task's clinically set
range; the later test period is touched only to report, never to choose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

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
from models.registry import (
    CHALLENGER,
    CHAMPION,
    MlflowLocation,
    alias_version,
    rounded_metrics,
    set_alias,
    tag_version,
)
from models.risk_model import SKOPS_TRUSTED_TYPES
from models.tasks import PredictionTask
from models.updating import (
    NON_NEGATIVE,
    Reference,
    UpdateChoice,
    UpdatedRiskModel,
    choose_update,
    fit_update,
)

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
    reference: UpdatedRiskModel | None = None
    """The model to update (the champion); None: the LACE index itself."""
    reference_version: str | None = None
    alpha: float = 0.05
    """Significance level of the closed test's likelihood-ratio tests."""


@dataclass(frozen=True)
class TrainingResult:
    registered_model: str
    version: str
    alias: str
    run_id: str
    selected: str
    """The updating method the closed test chose."""
    cv_auroc: float
    test_metrics: Mapping[str, Estimate]
    lace_auroc: Estimate
    auroc_gain_over_lace: Estimate
    threshold: float | None
    cutoff: datetime
    update: UpdateChoice


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


def _out_of_fold_risk(
    method: str,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    groups: list[int],
    reference: Reference,
    options: TrainingOptions,
) -> np.ndarray:
    """Each discharge's risk from the chosen method refitted without its patient's fold."""
    risk = np.zeros(len(y))
    folds = StratifiedGroupKFold(options.folds, shuffle=True, random_state=options.seed)
    for fit_rows, held_out in folds.split(X, y, groups):
        model = fit_update(method, X[fit_rows], y[fit_rows], reference, weights[fit_rows])
        risk[held_out] = model.predict_proba(X[held_out])[:, 1]
    return risk


def _band_rates(examples: list[Example]) -> dict[str, float | None]:
    def rate(selected: list[Example]) -> float | None:
        return sum(e.label for e in selected) / len(selected) if selected else None

    return {
        "all": rate(examples),
        "lace_high": rate([e for e in examples if e.lace_score >= LACE_HIGH_RISK_MIN]),
        "lace_low": rate([e for e in examples if e.lace_score < LACE_HIGH_RISK_MIN]),
    }


def _update_summary(update: UpdateChoice) -> dict[str, Any]:
    """The closed test as the run and the model card record it."""
    return {
        "method": update.method,
        "alpha": update.alpha,
        "shrinkage": update.shrinkage,
        "log_likelihoods": {k: round(v, 4) for k, v in update.log_likelihoods.items()},
        "parameters": update.parameters,
        "tests_against_most_extensive": [
            {
                "simpler": c.simpler,
                "chi2": round(c.statistic, 4),
                "df": c.df,
                "p_value": round(c.p_value, 4),
            }
            for c in update.comparisons
        ],
        "coefficients": {k: round(v, 6) for k, v in update.model.coefficient_table().items()},
        "non_negative": sorted(NON_NEGATIVE),
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
    X, y = np.array(feature_matrix(train)), np.array([e.label for e in train], dtype=float)
    weights = np.array([e.weight for e in train], dtype=float)
    X_test, y_test = np.array(feature_matrix(test)), np.array([e.label for e in test])
    # Folds group by patient; numbering patients by first appearance (not by their keyed
    # pseudonym) keeps the folds, and so the threshold, the same whatever the site's key.
    numbering: dict[str, int] = {}
    groups = [numbering.setdefault(e.patient_key, len(numbering)) for e in train]
    lace_test = np.array([e.lace_score for e in test], dtype=float)
    progress(
        f"cohort: {len(cohort.examples)} discharges of {cohort.patients} patients, "
        f"train {len(train)} ({int(y.sum())} events) before {cutoff:%Y-%m-%d}, "
        f"test {len(test)} ({int(y_test.sum())} events)"
    )

    reference = Reference.of(options.reference) if options.reference else Reference.lace_index()
    starting_point = (
        f"{task.registered_model} v{options.reference_version}"
        if options.reference
        else "the LACE index (van Walraven 2010)"
    )
    update = choose_update(X, y, reference, weights=weights, alpha=options.alpha)
    model = update.model
    for comparison in update.comparisons:
        progress(
            f"closed test: {comparison.simpler} against the most extensive update: "
            f"chi2 {comparison.statistic:.2f} on {comparison.df} df, p {comparison.p_value:.4f}"
        )
    progress(f"update of {starting_point}: {update.method}")
    oof_risk = _out_of_fold_risk(update.method, X, y, weights, groups, reference, options)
    cv_auroc = evaluate_risks(y, oof_risk, rounds=0, names=("auroc",))["auroc"].value
    curve = decision_curve(y, oof_risk, THRESHOLD_GRID)
    threshold = choose_threshold(curve, *task.decision_range)
    risk = model.predict_proba(X_test)[:, 1]
    rounds, seed = options.bootstrap_rounds, options.seed
    metrics = evaluate_risks(y_test, risk, rounds=rounds, seed=seed)
    lace_auroc = evaluate_risks(y_test, lace_test, rounds=rounds, seed=seed, names=("auroc",))[
        "auroc"
    ]
    gain = auroc_difference(y_test, risk, lace_test, rounds=rounds, seed=seed)

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
    summary = _update_summary(update)
    with location.active():
        experiment_id = location.experiment_id(task.name)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"train {update.method}"
        ) as run:
            mlflow.set_tags(
                {
                    **window,
                    "task": task.name,
                    "kind": "training",
                    "update_method": update.method,
                    "updated_from": starting_point,
                }
            )
            mlflow.log_params(
                {
                    "seed": options.seed,
                    "folds": options.folds,
                    "test_fraction": options.test_fraction,
                    "starting_point": starting_point,
                    "update_method": update.method,
                    "closed_test_alpha": options.alpha,
                    "shrinkage": "none" if update.shrinkage is None else round(update.shrinkage, 4),
                    "sample_weights": ", ".join(
                        f"{w:g} x {n}" for w, n in sorted(Counter(weights.tolist()).items())
                    ),
                    "decision_threshold": threshold,
                    "decision_range": str(task.decision_range),
                }
            )
            mlflow.log_input(
                mlflow.data.from_pandas(
                    frame.assign(label=y), name=f"{task.name}-train", targets="label"
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
            flat = {"cv_auroc": cv_auroc}
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
            for comparison in update.comparisons:
                flat[f"closed_test.{comparison.simpler}.chi2"] = comparison.statistic
                flat[f"closed_test.{comparison.simpler}.p_value"] = comparison.p_value
            mlflow.log_metrics(rounded_metrics(flat))
            mlflow.log_dict(summary, "model_update.json")
            test_curve = decision_curve(y_test, risk, THRESHOLD_GRID)
            for file, figure in {
                "plots/roc.png": roc_plot(y_test, {update.method: risk, "LACE index": lace_test}),
                "plots/precision_recall.png": precision_recall_plot(
                    y_test, {update.method: risk, "LACE index": lace_test}
                ),
                "plots/calibration.png": calibration_plot(y_test, {update.method: risk}),
                "plots/decision_curve_train_oof.png": decision_curve_plot(curve, threshold),
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
                rounded_metrics(
                    {
                        f"fairness_gap.{name}.{attribute.replace(' ', '_')}": value
                        for attribute, values in gaps.items()
                        for name, value in values.items()
                        if name != "groups"
                    }
                )
            )
            card = _model_card(
                task,
                starting_point,
                summary,
                cohort,
                train,
                test,
                cutoff,
                metrics,
                lace_auroc,
                gain,
                subgroups,
                threshold,
                implausible_directions(model),
            )
            mlflow.log_dict(card, "model_card.json")
            mlflow.log_text(model_card_markdown(card), "model_card.md")
            example = frame.head(3)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                input_example=example,
                signature=infer_signature(example, model.predict_proba(example)[:, 1]),
                pyfunc_predict_fn="predict_proba",
                pip_requirements=[
                    f"scikit-learn=={_version('scikit-learn')}",
                    f"scipy=={_version('scipy')}",
                    f"mlflow=={mlflow.__version__}",
                ],
                metadata={
                    "task": task.name,
                    "candidate": update.method,
                    "updated_from": starting_point,
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
            version = mlflow.register_model(
                info.model_uri, task.registered_model, tags={"run_id": run.info.run_id}
            )
    version_id = str(version.version)
    client = location.client()
    client.update_run(run.info.run_id, name=f"v{version_id} {update.method} (train)")
    client.set_tag(run.info.run_id, "registered_version", version_id)
    alias = (
        CHAMPION
        if options.promote or alias_version(location, task.registered_model, CHAMPION) is None
        else CHALLENGER
    )
    approval = {
        CHALLENGER: "not approved: a challenger, to be decided by the promotion gate",
        CHAMPION: "promoted by hand (lhs train --promote), without the gate"
        if options.promote
        else "the first model: champion because none was registered",
    }[alias]
    # Tagged before the alias moves, so a service that loads it sees how it came to serve.
    tag_version(
        location,
        task.registered_model,
        version_id,
        {
            "update_method": update.method,
            "updated_from": starting_point,
            "test_auroc": f"{metrics['auroc'].value:.4f}",
            "approval": approval,
        },
        description=f"{update.method} of {starting_point}, chosen by closed testing "
        f"(Vergouwe 2017) on {len(train)} discharges before {cutoff:%Y-%m-%d}; test AUROC "
        f"{metrics['auroc']} on {len(test)} later ones (LACE {lace_auroc}). Registered as "
        f"@{alias}.",
    )
    set_alias(location, task.registered_model, alias, version_id)
    progress(f"{update.method}: test AUROC {metrics['auroc']}; LACE {lace_auroc}")
    progress(f"registered {task.registered_model} version {version_id} as @{alias}")
    return TrainingResult(
        registered_model=task.registered_model,
        version=version_id,
        alias=alias,
        run_id=run.info.run_id,
        selected=update.method,
        cv_auroc=cv_auroc,
        test_metrics=metrics,
        lace_auroc=lace_auroc,
        auroc_gain_over_lace=gain,
        threshold=threshold,
        cutoff=cutoff,
        update=update,
    )


def register_recalibration(
    task: PredictionTask,
    location: MlflowLocation,
    champion_version: str,
    champion_metadata: Mapping[str, Any],
    update: UpdateChoice,
    window: str,
) -> str:
    """Register a recalibration of the champion (``update``, fitted on ``window``, a short
    description of the recent patients) as a new version: the champion's threshold, rates
    and model card, with the recalibration added. Returns the version."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    model = update.model
    card = dict(champion_metadata.get("model_card", {}))
    card["recalibration"] = {
        "of_version": champion_version,
        "on": window,
        "reason": "the champion's calibration on the recent window excluded the ideal",
        **_update_summary(update),
    }
    metadata = dict(champion_metadata) | {
        "candidate": f"{update.method} of v{champion_version}",
        "updated_from": f"{task.registered_model} v{champion_version}",
        "model_card": card,
    }
    example = pd.DataFrame([list(model.reference)], columns=list(FEATURE_NAMES))
    with location.active():
        experiment_id = location.experiment_id(task.name)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.set_tags(
                {
                    "task": task.name,
                    "kind": "champion-recalibration",
                    "update_method": update.method,
                    "updated_from": f"v{champion_version}",
                }
            )
            mlflow.log_params({"window": window, "update_method": update.method})
            mlflow.log_metrics(
                rounded_metrics(
                    {f"closed_test.{c.simpler}.p_value": c.p_value for c in update.comparisons}
                )
            )
            mlflow.log_dict(card["recalibration"], "model_update.json")
            mlflow.log_dict(card, "model_card.json")
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                input_example=example,
                signature=infer_signature(example, model.predict_proba(example)[:, 1]),
                pyfunc_predict_fn="predict_proba",
                pip_requirements=[
                    f"scikit-learn=={_version('scikit-learn')}",
                    f"scipy=={_version('scipy')}",
                    f"mlflow=={mlflow.__version__}",
                ],
                metadata=metadata,
            )
            version = mlflow.register_model(
                info.model_uri, task.registered_model, tags={"run_id": run.info.run_id}
            )
    version_id = str(version.version)
    location.client().update_run(
        run.info.run_id, name=f"v{version_id} {update.method} of v{champion_version}"
    )
    tag_version(
        location,
        task.registered_model,
        version_id,
        {"update_method": update.method, "updated_from": f"v{champion_version}"},
        description=f"{update.method} of champion v{champion_version} on {window}, because "
        "the champion's calibration there excluded the ideal.",
    )
    return version_id


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


def implausible_directions(model: UpdatedRiskModel) -> list[str]:
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


def _training_data(
    cohort: Cohort, train: list[Example], test: list[Example], cutoff: datetime
) -> str:
    """Where the examples came from, counted, not assumed."""
    served = {e.patient_key for e in cohort.examples if e.feedback is not None}
    recorded = cohort.patients - len(served)
    sources = f"{recorded} patients from synthetic records (Synthea FHIR R4)"
    if served:
        served_discharges = sum(1 for e in cohort.examples if e.feedback is not None)
        sources += (
            f" and {len(served)} patients served by this service ({served_discharges} "
            "discharges, their bedside feature vectors and labelled outcomes)"
        )
    return (
        f"{sources}; {len(train)} index discharges before {cutoff:%Y-%m-%d} for training, "
        f"{len(test)} later ones for testing."
    )


def _model_card(
    task: PredictionTask,
    starting_point: str,
    update: Mapping[str, Any],
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
            "name": f"{task.registered_model} ({update['method']} of {starting_point})",
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
            "training_data": _training_data(cohort, train, test, cutoff),
            "model_updating": {
                "starting_point": starting_point,
                "evidence": "LACE index: van Walraven C et al. CMAJ 2010;182(6):551-557, "
                "https://doi.org/10.1503/cmaj.091117 (its points are the linear predictor; "
                "intercept and slope are estimated locally)",
                "selection": "closed testing procedure, Vergouwe Y et al. Stat Med "
                "2017;36:4529-4539, https://doi.org/10.1002/sim.7179",
                **update,
            },
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
            "bias_mitigation_approach": "Performance and calibration are reported by sex, age "
            "band and race (where recorded) on the test period; the promotion gate refuses a "
            "challenger that loses discrimination in a sex or age-band subgroup.",
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
        maintenance="Retrained (`lhs retrain`) when outcomes accumulate: each new version "
        "updates the champion and serves only if the promotion gate (evaluation/gate.py) "
        "finds it better on the same recent patients; the gate promotes automatically unless "
        "retraining runs with --require-approval. The registry version's tags record each "
        "decision.",
    )

"""Retraining on what practice taught: served predictions with their outcomes, then the gate.

The snapshot is the original training cohort plus every served prediction whose outcome
window has closed, as the feature vector computed at the bedside (no recomputation, so no
training-serving skew) with its label. Patients whose card was **accepted** are left out
of training and evaluation: the intervention changed their outcome, and learning from it
would teach the model that high-risk patients do well. They are reported separately.

The gate window is the latest ``test_fraction`` of the served, untreated discharges (the
population the model now serves), or, while they hold too few events, the latest part of
the whole snapshot. The challenger is an update of the champion (models/updating.py: the
closed test picks recalibration, revision or extension) fitted as ``lhs train`` does on
everything before the window, with each served example weighted so that together they
carry ``served_share`` of the training weight: a few hundred local discharges would
otherwise be drowned by the original records, whose relationships may differ from this
clinic's. Then champion and challenger are scored on the window, and the gate
(evaluation/gate.py) decides. When the champion's own calibration on the window is off
and the challenger is not promoted, the champion is recalibrated on the window (intercept
and slope at most, chosen by the same closed test; the ranking, and so the AUROC, is
unchanged) and the recalibrated version serves. Everything is logged to MLflow, each
decision is tagged on the registered versions, and recorded in the store.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from evaluation.drift import performance_by_year, population_stability_index
from evaluation.gate import GateDecision, GatePolicy, decide
from evaluation.metrics import evaluate_risks
from evaluation.plots import calibration_plot, roc_plot
from knowledge.calculators.lace import lace_index
from models.cohort import Cohort, Example, age_band, feature_matrix
from models.features import FEATURE_NAMES
from models.registry import (
    CHAMPION,
    MlflowLocation,
    alias_version,
    rounded_metrics,
    set_alias,
    tag_version,
)
from models.serving import load_served_model
from models.tasks import PredictionTask
from models.training import TrainingOptions, register_recalibration, temporal_split, train_task
from models.updating import Reference, UpdatedRiskModel, choose_update
from storage.repository import Store
from storage.tables import ModelDecision, PredictionRecord

OTHER_CARD_ACCEPTED = "other card accepted"
TREATED = frozenset({"accepted", OTHER_CARD_ACCEPTED})
"""Feedback groups whose outcome an intervention may have changed: the model's card was
accepted, or another card of the same call was (e.g. the LACE rule's follow-up)."""
MAX_SERVED_WEIGHT = 10.0
"""No served discharge counts for more than this many original ones (a handful of served
examples must not dominate the fit)."""
_APPROVAL = {
    "promoted": "promoted automatically by the gate (evaluation/gate.py)",
    "awaiting-approval": "passed the gate; awaiting approval (lhs models promote --approve)",
    "rejected": "refused by the gate; never served",
    "recalibrated": "promoted automatically: the champion recalibrated after a calibration "
    "alert (same ranking, calibration re-estimated on the recent window)",
}
"""What a version's ``approval`` tag (shown on its model card) says for each decision."""
MIN_WINDOW_EVENTS = 10
"""A served gate window needs at least this many events and non-events for a stable AUROC."""


@dataclass(frozen=True)
class RetrainResult:
    decision: str
    champion_version: str | None
    challenger_version: str
    gate: GateDecision | None
    served_examples: int
    treated_excluded: int
    run_id: str | None
    served_weight: float = 1.0
    recalibrated_version: str | None = None
    """A recalibration of the champion registered because its calibration was off."""


def served_examples(store: Store, task: PredictionTask) -> list[Example]:
    """Labelled served predictions as examples, with the feedback on their card."""
    predictions = store.labelled_predictions(task.registered_model)
    feedback = store.latest_feedback([p.card_uuid for p in predictions if p.card_uuid])
    acted_on = store.accepted_invocations(sorted({p.invocation_id for p in predictions}))
    examples = []
    for p in predictions:
        f = p.features
        lace = lace_index(
            length_of_stay_days=int(f["length_of_stay_days"]),
            acute_admission=bool(f["acute_admission"]),
            charlson=int(f["charlson_index"]),
            ed_visits_6_months=int(f["ed_visits_6m"]),
        )
        examples.append(
            Example(
                patient_key=p.patient_key,
                encounter=f"prediction/{p.id}",
                predicted_at=p.prediction_time,
                features={k: float(v) for k, v in f.items()},
                label=int(p.label or 0),
                lace_score=lace.score,
                # As stored for the audit (so as the cohort names it); the model's feature
                # for a prediction stored before demographics were.
                sex=p.sex or ("male" if f["male"] else "female"),
                age_band=age_band(int(f["age_years"])),
                race=p.race or "not recorded",
                feedback=feedback_group(p, feedback, acted_on),
            )
        )
    return examples


def feedback_group(
    prediction: PredictionRecord, feedback: dict[str, str], acted_on: set[int]
) -> str:
    """accepted, other card accepted, overridden, none (a card without an answer) or no card."""
    own = feedback.get(prediction.card_uuid or "")
    if own == "accepted":
        return own
    if prediction.invocation_id in acted_on:
        return OTHER_CARD_ACCEPTED
    return own or ("none" if prediction.card_uuid else "no card")


def served_window_start(
    untreated: list[Example], fraction: float, min_events: int = MIN_WINDOW_EVENTS
) -> datetime | None:
    """Start of the latest ``fraction`` of served untreated discharges, or None when that
    window holds fewer than ``min_events`` events or non-events."""
    if not untreated:
        return None
    ordered = sorted(untreated, key=lambda e: e.predicted_at)
    start = ordered[int(len(ordered) * (1 - fraction))].predicted_at
    events = sum(e.label for e in ordered if e.predicted_at >= start)
    size = sum(1 for e in ordered if e.predicted_at >= start)
    return start if min(events, size - events) >= min_events else None


def served_weight(original: int, served: int, share: float) -> float:
    """The weight per served example that gives the served ones ``share`` of the total
    training weight (never below 1, at most MAX_SERVED_WEIGHT)."""
    if not served or not 0 < share < 1:
        return 1.0
    return min(MAX_SERVED_WEIGHT, max(1.0, share / (1 - share) * original / served))


def retrain(
    task: PredictionTask,
    base: Cohort,
    store: Store,
    location: MlflowLocation,
    *,
    policy: GatePolicy = GatePolicy(),
    options: TrainingOptions = TrainingOptions(),
    require_approval: bool = False,
    served_share: float = 0.5,
    decided_by: str = "lhs retrain",
    progress: Callable[[str], Any] = lambda _: None,
) -> RetrainResult:
    import mlflow

    served = served_examples(store, task)
    treated = [e for e in served if e.feedback in TREATED]
    untreated = [e for e in served if e.feedback not in TREATED]
    window_start = served_window_start(untreated, options.test_fraction)
    in_training = [e for e in untreated if window_start is None or e.predicted_at < window_start]
    weight = served_weight(len(base.examples), len(in_training), served_share)
    untreated = [dataclasses.replace(e, weight=weight) for e in untreated]
    snapshot = Cohort(
        examples=sorted(base.examples + untreated, key=lambda e: (e.predicted_at, e.patient_key)),
        excluded=base.excluded
        + Counter({"card accepted (outcome changed by treatment)": len(treated)}),
        patients=base.patients + len({e.patient_key for e in untreated}),
        data_end=base.data_end,
    )
    progress(
        f"snapshot: {len(base.examples)} original + {len(untreated)} served examples "
        f"({len(treated)} with an accepted card left out); served weight {weight:.2f}; "
        + (
            f"gate window: served discharges from {window_start:%Y-%m-%d}"
            if window_start
            else "gate window: latest part of the snapshot (too few served events yet)"
        )
    )
    champion = alias_version(location, task.registered_model, CHAMPION)
    old = load_served_model(location, task.registered_model, champion) if champion else None
    # The challenger updates the champion; a champion from before models were updates of
    # LACE (models/risk_model.py) cannot be, and LACE is the starting point again.
    reference = old.model if old and isinstance(old.model, UpdatedRiskModel) else None
    options = dataclasses.replace(
        options,
        promote=False,
        test_from=window_start,
        reference=reference,
        reference_version=champion if reference else None,
    )
    trained = train_task(task, snapshot, location, options, progress=progress)
    if champion is None or old is None:
        _record(
            store,
            task,
            "promoted",
            None,
            trained.version,
            ["no champion: the first model serves"],
            None,
            decided_by,
        )
        return RetrainResult(
            "promoted", None, trained.version, None, len(served), len(treated), None, weight
        )

    _, window, _ = temporal_split(snapshot.examples, options.test_fraction, window_start)
    X = np.array(feature_matrix(window))
    y = np.array([e.label for e in window], dtype=float)
    new = load_served_model(location, task.registered_model, trained.version).model
    p_old, p_new = old.model.predict_proba(X)[:, 1], new.predict_proba(X)[:, 1]
    patients = [e.patient_key for e in window]
    gate = decide(
        y,
        p_old,
        p_new,
        {
            "sex": [e.sex for e in window],
            "age band": [e.age_band for e in window],
            "race": [e.race for e in window],
        },
        policy,
        patients=patients,
    )
    if gate.promote and not require_approval:
        outcome = "promoted"
    else:
        outcome = "awaiting-approval" if gate.promote else "rejected"
    # Tagged before the alias moves, so a service that loads it sees how it came to serve.
    tag_version(
        location,
        task.registered_model,
        trained.version,
        {"gate_decision": outcome, "approval": _APPROVAL[outcome]},
    )
    if outcome == "promoted":
        set_alias(location, task.registered_model, CHAMPION, trained.version)
    progress(f"gate: {outcome} (challenger v{trained.version} against champion v{champion})")
    for reason in gate.reasons:
        progress(f"  {reason}")
    for alert in gate.champion_alerts:
        progress(f"  ALERT: champion v{champion}: {alert}")
    recalibrated = None
    if gate.champion_alerts and not gate.promote and isinstance(old.model, UpdatedRiskModel):
        recalibrated = recalibrate_champion(
            task, location, champion, old.model, old.metadata, window, y
        )
        progress(f"champion v{champion} recalibrated as v{recalibrated}")

    with location.active():
        experiment_id = location.experiment_id(task.name)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"gate v{trained.version} vs v{champion}: {outcome}",
        ) as run:
            mlflow.set_tags(
                {
                    "task": task.name,
                    "kind": "promotion-gate",
                    "decision": outcome,
                    "champion_version": champion,
                    "challenger_version": trained.version,
                    "challenger_run_id": trained.run_id,
                    "dataset.sha256": snapshot.digest(),
                    "served_examples": str(len(served)),
                    "treated_excluded": str(len(treated)),
                    "gate_window": "served" if window_start else "snapshot",
                    "champion_alert": "; ".join(gate.champion_alerts) or "none",
                    "recalibrated_version": recalibrated or "none",
                }
            )
            mlflow.log_params(
                dataclasses.asdict(policy)
                | {
                    "require_approval": require_approval,
                    "served_share": served_share,
                    "served_weight": weight,
                    "window_start": window[0].predicted_at.isoformat(),
                }
            )
            metrics: dict[str, float] = {
                "window_size": float(len(window)),
                "window_events": float(y.sum()),
            }
            for prefix, values in (("champion", gate.champion), ("challenger", gate.challenger)):
                for name, estimate in values.items():
                    metrics |= {
                        f"{prefix}_{name}": estimate.value,
                        f"{prefix}_{name}_ci_low": estimate.low,
                        f"{prefix}_{name}_ci_high": estimate.high,
                    }
            for name, gain in (
                ("auroc_gain", gate.auroc_gain),
                ("calibration_gain", gate.calibration_gain),
            ):
                metrics |= {
                    name: gain.value,
                    f"{name}_ci_low": gain.low,
                    f"{name}_ci_high": gain.high,
                }
            for name, gain in gate.subgroup_gains.items():
                safe = name.replace("=", ".").replace(" ", "_").replace("+", "plus")
                metrics |= {
                    f"subgroup_auroc_gain.{safe}": gain.value,
                    f"subgroup_auroc_gain.{safe}_ci_low": gain.low,
                    f"subgroup_auroc_gain.{safe}_ci_high": gain.high,
                }
            metrics |= _champion_by_feedback(old.model, served)
            metrics |= _drift(old.model, base.examples, served)
            mlflow.log_metrics(rounded_metrics(metrics))
            times = [e.predicted_at for e in window]
            mlflow.log_dict(
                {
                    "champion": [
                        dataclasses.asdict(r) for r in performance_by_year(y, p_old, times)
                    ],
                    "challenger": [
                        dataclasses.asdict(r) for r in performance_by_year(y, p_new, times)
                    ],
                },
                "performance_by_year.json",
            )
            mlflow.log_text("\n".join(gate.reasons) + "\n", "gate_decision.txt")
            compared = {f"champion v{champion}": p_old, f"challenger v{trained.version}": p_new}
            title = f"Calibration on the gate window ({len(window)} discharges)"
            mlflow.log_figure(roc_plot(y, compared), "plots/roc.png")
            mlflow.log_figure(calibration_plot(y, compared, title=title), "plots/calibration.png")
    _tag_decision(location, task, outcome, champion, trained.version, gate, run.info.run_id)
    _record(
        store, task, outcome, champion, trained.version, gate.reasons, run.info.run_id, decided_by
    )
    if recalibrated is not None:
        recalibration = "awaiting-approval" if require_approval else "recalibrated"
        tag_version(
            location,
            task.registered_model,
            recalibrated,
            {
                "gate_decision": recalibration,
                "gate_run_id": run.info.run_id,
                "approval": _APPROVAL[recalibration],
            },
        )
        if recalibration == "recalibrated":
            set_alias(location, task.registered_model, CHAMPION, recalibrated)
        _record(
            store,
            task,
            recalibration,
            champion,
            recalibrated,
            [f"champion v{champion}: {alert}" for alert in gate.champion_alerts],
            run.info.run_id,
            decided_by,
        )
    return RetrainResult(
        outcome,
        champion,
        trained.version,
        gate,
        len(served),
        len(treated),
        run.info.run_id,
        weight,
        recalibrated,
    )


def recalibrate_champion(
    task: PredictionTask,
    location: MlflowLocation,
    champion: str,
    model: UpdatedRiskModel,
    metadata: Mapping[str, Any],
    window: list[Example],
    y: np.ndarray,
) -> str:
    """Register the champion recalibrated on the window (at most intercept and slope, chosen
    by the closed test); returns the new version (not yet serving)."""
    update = choose_update(
        np.array(feature_matrix(window)),
        y,
        Reference.of(model),
        most_extensive="logistic-recalibration",
    )
    described = (
        f"{len(window)} discharges from {window[0].predicted_at:%Y-%m-%d} to "
        f"{window[-1].predicted_at:%Y-%m-%d} ({int(y.sum())} events)"
    )
    return register_recalibration(task, location, champion, dict(metadata), update, described)


def _tag_decision(
    location: MlflowLocation,
    task: PredictionTask,
    outcome: str,
    champion: str,
    challenger: str,
    gate: GateDecision,
    run_id: str,
) -> None:
    """The gate's decision on both registered versions, where the registry's reader sees it."""
    failed = [reason for reason in gate.reasons if reason.startswith("FAIL")]
    tag_version(
        location,
        task.registered_model,
        challenger,
        {
            "gate_run_id": run_id,
            "gate_against": f"v{champion}",
            "refusal_reasons": "; ".join(failed)[:4000] if failed else "none",
        },
    )
    if outcome == "promoted":
        tag_version(location, task.registered_model, champion, {"replaced_by": f"v{challenger}"})


def _champion_by_feedback(model: Any, served: list[Example]) -> dict[str, float]:
    """The champion's observed and predicted outcome rates per feedback group (accepted,
    overridden, no card): where treatment changed outcomes, the two part."""
    found: dict[str, float] = {}
    for group in sorted({e.feedback for e in served}):
        members = [e for e in served if e.feedback == group]
        risks = model.predict_proba(np.array(feature_matrix(members)))[:, 1]
        labels = np.array([e.label for e in members], dtype=float)
        key = group.replace(" ", "_")
        found[f"feedback.{key}.n"] = float(len(members))
        found[f"feedback.{key}.observed_rate"] = float(labels.mean())
        found[f"feedback.{key}.mean_predicted"] = float(risks.mean())
        if 0 < labels.sum() < len(labels):
            found[f"feedback.{key}.auroc"] = evaluate_risks(
                labels, risks, rounds=0, names=("auroc",)
            )["auroc"].value
    return found


def _drift(model: Any, reference: list[Example], served: list[Example]) -> dict[str, float]:
    """PSI of each feature and of the champion's risk: served patients against the records
    the model was trained on (above 0.25: the population has shifted, retrain and review)."""
    if not served or not reference:
        return {}
    X_ref, X_now = np.array(feature_matrix(reference)), np.array(feature_matrix(served))
    found = {
        f"psi.{name}": population_stability_index(X_ref[:, j], X_now[:, j])
        for j, name in enumerate(FEATURE_NAMES)
    }
    found["psi.prediction"] = population_stability_index(
        model.predict_proba(X_ref)[:, 1], model.predict_proba(X_now)[:, 1]
    )
    return found


def _record(
    store: Store,
    task: PredictionTask,
    decision: str,
    champion: str | None,
    challenger: str,
    reasons: list[str],
    run_id: str | None,
    decided_by: str,
) -> None:
    store.record_decision(
        ModelDecision(
            model_name=task.registered_model,
            decision=decision,
            champion_version=champion,
            challenger_version=challenger,
            reasons=reasons,
            mlflow_run_id=run_id,
            decided_by=decided_by,
        )
    )

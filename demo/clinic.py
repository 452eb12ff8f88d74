"""The simulated clinic: every part of the learning loop, end to end, on embedded defaults.

Rounds of discharges are sent to the running service over HTTP with a signed CDS client
JWT. The patients come from a simulated world (demo/world.py, ``--world``): every discharge
is of a new person, made from a synthetic record (../shared or the repository's sample)
under a new identity, with a latent frailty that no served feature carries. Simulated
clinicians accept or override the model's card as the world says (in the confounded
world, far more often for the frail); outcomes arrive through the outcomes endpoint, drawn
from the world's true risk, lowered by accepted transitional care by an amount that
differs by age group. After each round the predictions are labelled, a challenger is
retrained on what was served and the gate decides; a promoted model is hot-swapped into
the running service.

Because the world is a simulation, the demo knows the truth and says, per round, what the
decision did to it: champion and challenger scored against the true risks of new patients
of the world as the next round will see it. It also shows the trap the loop avoids: a
challenger updated on every served discharge, treated ones included, judged on every
discharge of the next round and on its untreated ones only.

With --experiment, the organisation's improvement cycle follows: a candidate LACE version
(high risk from 12) runs in shadow mode through the rounds, the wording experiment runs
on patients of its own, and its result becomes a change proposal that a second person
approves, installed in the demo's copy of the knowledge library.

Every number of the world is a simulation assumption, not clinical knowledge.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path

import httpx
import numpy as np
import typer
import yaml
from numpy.typing import NDArray

from bench.bench import ROOT, Server, TokenMinter
from cds_service.auth import ClientRegistration, ClientRegistry
from cds_service.config import Settings, default_patients
from cli.analytics import gather_report, log_improvements
from cli.experiments import log_analysis
from cli.experiments import render as render_analysis
from demo import outbreak
from demo.feedback import feedback_item
from demo.world import (
    SIMULATION_ASSUMPTION,
    WORLDS,
    SimulatedPatient,
    TruthScore,
    World,
    acceptance_probability,
    discharge,
    encounter,
    new_patient,
    score_against_truth,
    treated_risk,
    untreated_risk,
)
from evaluation.experiment_analysis import ExperimentAnalysis, analyze
from evaluation.gate import GatePolicy, decide
from evaluation.metrics import Estimate, evaluate_risks
from evaluation.report import ReportData, render_report
from evaluation.shadow_analysis import render as render_shadow
from fhir_client.bundles import load_bundle, patient_bundles
from fhir_client.local_store import LocalFhirStore
from fhir_client.pseudonym import patient_key
from fhir_client.record import PatientRecord
from knowledge.artifact import RuleArtifact
from knowledge.experiment import EXPERIMENTS_DIR, ExperimentDefinition, load_experiment
from knowledge.library import KNOWLEDGE_DIR, load_library
from learning.experiment_registry import experiment_patients, start_experiment
from learning.labels import label_predictions
from learning.proposals import propose, review, rule_history
from learning.retraining import (
    TREATED,
    RetrainResult,
    retrain,
    served_examples,
    served_weight,
    served_window_start,
)
from learning.shadow_registry import shadow_summary, start_rule_shadow
from models.cohort import Cohort, Example, build_cohort, feature_matrix
from models.features import FEATURE_NAMES, ReadmissionFeatures
from models.serving import load_served_model
from models.tasks import READMISSION_30D
from models.training import TrainingOptions, temporal_split, train_task
from models.updating import Reference, UpdateChoice, UpdatedRiskModel, choose_update
from point_of_care.catalogue import build_services
from point_of_care.examples import EXAMPLES
from point_of_care.sweep import hook_request
from storage.db import create_db_engine
from storage.repository import Store
from storage.tables import ShadowRun

PSEUDONYM_KEY = "demo-pseudonym-key-of-32-characters"
"""The service's key and the training cohort's: the same patients get the same pseudonyms."""

SERVICE = "lhs-encounter-discharge"
FHIR_BASE = "https://demo-ehr.example/fhir"
LACE_RULE = "lace-readmission-risk"
EXPERIMENT = EXPERIMENTS_DIR / "lace-follow-up-wording.yaml"
SHADOW = "lace-from-12"
LACE_ACCEPTANCE = {"current": 0.35, "action-first": 0.50}
"""With --experiment: how often clinicians accept each wording of the LACE card. The true
effect of the action-first wording on acceptance is their difference, +0.15."""


@dataclass
class RoundStats:
    number: int
    world_state: str = ""
    model_version: str = "?"
    calls: int = 0
    cards: int = 0
    accepted: int = 0
    overridden: int = 0
    events_treated: int = 0
    treated: int = 0
    events_untreated: int = 0
    untreated: int = 0
    auroc: float | None = None
    gate: str = ""
    decision: str = ""
    reason: str = ""
    serving_after: str = ""
    window: str = ""
    window_shared_patients: int | None = None
    truth_before: TruthScore | None = None
    truth_after: TruthScore | None = None
    truth_challenger: TruthScore | None = None
    feedback_loop: FeedbackLoop | None = None


@dataclass(frozen=True)
class FeedbackLoop:
    """The trap retraining avoids: the champion updated on the discharges it served in
    earlier rounds *with* the treated ones (naive) against the same update without them (careful,
    as retraining does it), judged by the gate on this round's new patients: on all of them
    (where treated outcomes flatter the naive one) and on the untreated only."""

    method: str
    calibration_gain_all: Estimate
    auroc_gain_all: Estimate
    promoted_on_all: bool
    calibration_gain_untreated: Estimate
    auroc_gain_untreated: Estimate
    promoted_on_untreated: bool
    failed_on_untreated: list[str]
    truth_careful: TruthScore
    truth_naive: TruthScore
    careful_model: UpdatedRiskModel = dataclasses.field(repr=False, compare=False)
    """The update without the treated (not written to rounds.json)."""
    naive_model: UpdatedRiskModel = dataclasses.field(repr=False, compare=False)
    """The update with them."""


def _without_models(items: list[tuple[str, object]]) -> dict[str, object]:
    return {key: value for key, value in items if not key.endswith("_model")}


def _action_first_opening(definition: ExperimentDefinition) -> str:
    """How the experiment's action-first LACE card begins: its wording up to the first value."""
    arm = definition.arm("action-first")
    summary = arm.cards["high_risk"].summary if arm and "high_risk" in arm.cards else None
    if summary is None:
        raise SystemExit(f"{EXPERIMENT.name} has no action-first wording of the LACE card")
    return summary.split("{")[0]


def _hospital_patients(paths: list[Path], wanted: int) -> list[dict]:
    """Records of patients who have had hospital or emergency care before (the population
    that is discharged), in the given order, at most ``wanted``."""
    return list(islice(filter(had_hospital_care, map(load_bundle, paths)), wanted))


def had_hospital_care(bundle: dict) -> bool:
    """Whether the record holds an inpatient or emergency encounter."""
    return any(
        e["resource"]["resourceType"] == "Encounter"
        and e["resource"].get("class", {}).get("code") in {"IMP", "EMER"}
        for e in bundle["entry"]
    )


class Clinic:
    def __init__(
        self,
        url: str,
        minter: TokenMinter,
        rng: random.Random,
        world: World,
        lace_wording: str | None = None,
    ) -> None:
        self.world = world
        self.round_number = 1
        self.lace_wording = lace_wording
        """With the experiment: how the action-first LACE card begins (clinicians answer it)."""
        self.url = url
        self.minter = minter
        self.rng = rng
        self.http = httpx.Client(timeout=30)
        self.service = build_services(load_library())[SERVICE]
        self.features = ReadmissionFeatures(load_library())
        self.true_risks: dict[str, float] = {}
        """Each served patient's true untreated risk, by the service's pseudonym."""

    def _post(self, path: str, body: dict, params: dict | None = None) -> httpx.Response:
        token = self.minter.mint(self.url + path)
        response = self.http.post(
            self.url + path, json=body, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return response

    def _answer(self, card: dict, accepted: bool, override_reason: str) -> None:
        reason = next(r for r in card["overrideReasons"] if r["code"] == override_reason)
        item = feedback_item(card, accepted, reason)
        self._post(f"/cds-services/{SERVICE}/feedback", {"feedback": [item]})

    def visit(self, patient: SimulatedPatient, when: datetime, stats: RoundStats) -> None:
        store = LocalFhirStore.from_bundles([patient.bundle])
        stay = discharge(patient, when, self.world, self.round_number, self.rng)
        store.add(stay)
        context = {
            "userId": "Practitioner/demo-clinician",
            "patientId": patient.patient_id,
            "encounterId": stay["id"],
        }
        request = hook_request(store, self.service, context)
        resources = [e["resource"] for e in patient.bundle["entry"]] + [stay]
        self.serve(request, resources, stay, stats, patient.frailty)

    def true_risk(
        self,
        patient_id: str,
        resources: list[dict],
        stay: dict,
        frailty: float,
        round_number: int | None = None,
    ) -> tuple[dict[str, float], float]:
        """The served features (computed as the service computes them) and the world's true
        untreated risk, which also depends on the frailty the features lack."""
        record = PatientRecord.from_resources(patient_id, resources)
        discharged = datetime.fromisoformat(stay["period"]["end"])
        features = self.features(record, stay, discharged) or {}
        in_round = self.round_number if round_number is None else round_number
        return features, untreated_risk(self.world, features, frailty, in_round)

    def serve(
        self,
        request: dict,
        resources: list[dict],
        stay: dict,
        stats: RoundStats,
        frailty: float,
    ) -> None:
        """Call the service for a discharge, answer its cards as the world's clinicians
        would, and report what happens to the patient in the next 30 days."""
        patient_id = request["context"]["patientId"]
        cards = self._post(f"/cds-services/{SERVICE}", request).json()["cards"]
        stats.calls += 1
        features, risk = self.true_risk(patient_id, resources, stay, frailty)
        subject = patient_key(PSEUDONYM_KEY.encode(), request.get("fhirServer"), patient_id)
        self.true_risks[subject] = risk
        card = next(
            (c for c in cards if c["source"]["topic"]["code"] == READMISSION_30D.registered_model),
            None,
        )
        treated = False
        if card is not None:
            stats.cards += 1
            treated = self.rng.random() < acceptance_probability(self.world, frailty)
            stats.accepted += treated
            stats.overridden += not treated
            self._answer(card, treated, "patient-declined")
        lace = next((c for c in cards if c["source"]["topic"]["code"] == LACE_RULE), None)
        if self.lace_wording is not None and lace is not None:
            wording = "action-first" if lace["summary"].startswith(self.lace_wording) else "current"
            accepted = self.rng.random() < LACE_ACCEPTANCE[wording]
            self._answer(lace, accepted, "already-addressed")
            treated = treated or accepted
        if treated:
            risk = treated_risk(features, risk)
        event = self.rng.random() < risk
        stats.treated += treated
        stats.untreated += not treated
        stats.events_treated += event and treated
        stats.events_untreated += event and not treated
        if event:
            discharged = datetime.fromisoformat(stay["period"]["end"])
            start = discharged + timedelta(days=self.rng.uniform(1, 29))
            revisit = encounter(patient_id, start, self.rng, inpatient_share=0.0)
            self._post(
                "/outcomes",
                {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": revisit}]},
            )

    def truth_panel(
        self,
        templates: list[dict],
        size: int,
        round_number: int,
        when: datetime,
        rng: random.Random,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """New patients of the world as round ``round_number`` sees it, never served: their
        feature matrix and true untreated risks."""
        rows, risks = [], []
        for _ in range(size):
            patient = new_patient(rng.choice(templates), self.world, round_number, rng)
            start = when + timedelta(days=rng.uniform(0, 40))
            stay = discharge(patient, start, self.world, round_number, rng)
            resources = [e["resource"] for e in patient.bundle["entry"]] + [stay]
            features, risk = self.true_risk(
                patient.patient_id, resources, stay, patient.frailty, round_number
            )
            if features:
                rows.append([features[name] for name in FEATURE_NAMES])
                risks.append(risk)
        return np.array(rows, dtype=float), np.array(risks, dtype=float)


def _knowledge_copy(data_dir: Path) -> Path:
    """The demo's own knowledge library (approved changes are installed there)."""
    folder = data_dir / "knowledge"
    shutil.rmtree(folder, ignore_errors=True)
    for part in ("rules", "data", "experiments"):
        shutil.copytree(KNOWLEDGE_DIR / part, folder / part)
    return folder


def _lace_version(
    artifact: RuleArtifact, version: str, change: str, reason: str, **updates: object
) -> str:
    """A new version of the LACE artifact as YAML, with its change-log entry."""
    entry = {"date": date.today(), "version": version, "change": change, "reason": reason}
    raw = artifact.model_copy(update={"version": version, **updates}).model_dump(mode="json")
    raw["changelog"].insert(0, {**entry, "date": entry["date"].isoformat()})
    return yaml.safe_dump(raw, sort_keys=False)


def _frequent_attender(number: int, when: datetime, rng: random.Random) -> tuple[dict, list, dict]:
    """A discharge of a frequent attender with heart failure and COPD (the LACE 15 example of
    `lhs example lhs-encounter-discharge`) under a new identity and age: the request, the
    patient's resources and the discharged stay."""
    patient_id = f"demo-frequent-attender-{number}"
    request = json.loads(
        json.dumps(EXAMPLES[SERVICE](when.date())).replace("example-discharge", patient_id)
    )
    prefetch = request["prefetch"]
    born = when.date() - timedelta(days=round(365.25 * rng.uniform(50, 90)))
    prefetch["patient"]["birthDate"] = born.isoformat()
    resources = [prefetch["patient"]] + [
        e["resource"] for key in ("encounters", "conditions") for e in prefetch[key]["entry"]
    ]
    return request, resources, prefetch["encounter"]


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Until the running service shows a change (a model swapped in, an experiment started)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the service did not pick up the change in time")
        time.sleep(0.5)


def _serves(url: str, version: str) -> bool:
    ready = httpx.get(url + "/readyz").json()
    return bool(ready["models"][READMISSION_30D.registered_model]["version"] == version)


def _runs(url: str, experiment_id: str) -> bool:
    return experiment_id in httpx.get(url + "/readyz").json()["experiments"]


def _shadows(url: str, shadow_id: str) -> bool:
    return shadow_id in httpx.get(url + "/readyz").json()["shadows"]


def _shadow_run(store: Store, shadow_id: str) -> ShadowRun:
    return next(r for r in store.shadow_runs() if r.id == shadow_id)


def _propose_the_winner(
    store: Store,
    experiment: ExperimentDefinition,
    analysis: ExperimentAnalysis,
    lace: RuleArtifact,
    knowledge_dir: Path,
) -> None:
    """When the experiment establishes the action-first wording, it becomes a proposal, and
    the clinical lead approves it (installed in the demo's knowledge folder)."""
    found = analysis.acceptance.get("action-first")
    if found is None or not analysis.recommendation.startswith("stop") or found.difference <= 0:
        return
    arm = experiment.arm("action-first")
    assert arm is not None
    text = _lace_version(
        experiment.variant(arm, lace),
        "1.2.0",
        "the action-first wording of the card",
        f"experiment {experiment.id}: more follow-up booked with it",
    )
    proposal = propose(
        store,
        text,
        rationale="clinicians book follow-up more often when the card leads with the action",
        source=f"experiment:{experiment.id}",
        evidence=f"acceptance {found.difference:+.3f} (95% CI {found.ci_low:+.3f} to "
        f"{found.ci_high:+.3f}, always-valid p {found.always_valid_p:.3g})",
        proposed_by="QI analyst (make demo)",
        folder=knowledge_dir,
    )
    assert proposal.id is not None
    review(
        store,
        proposal.id,
        approve=True,
        reviewed_by="clinical lead (make demo)",
        note="effect established in the randomized experiment",
        folder=knowledge_dir,
    )


def _log_report(settings: Settings, report: Path, data: ReportData) -> None:
    import mlflow

    with settings.mlflow.active():
        experiment_id = settings.mlflow.experiment_id("learning-reports")
        with mlflow.start_run(experiment_id=experiment_id, run_name="make demo"):
            mlflow.log_artifact(str(report))
            log_improvements(data.improvements)


def _gate_window(store: Store, base: Cohort, test_fraction: float) -> tuple[str, int]:
    """The gate window retraining just used (learning/retraining.py), described, and how many
    of its patients are also among the patients the challenger was trained on."""
    untreated = [e for e in served_examples(store, READMISSION_30D) if e.feedback not in TREATED]
    start = served_window_start(untreated, test_fraction)
    snapshot = sorted(base.examples + untreated, key=lambda e: (e.predicted_at, e.patient_key))
    training, window, _ = temporal_split(snapshot, test_fraction, start)
    shared = {e.patient_key for e in window} & {e.patient_key for e in training}
    where = "untreated served discharges" if start else "latest part of the snapshot"
    described = (
        f"{len(window)} {where} of {len({e.patient_key for e in window})} patients; "
        f"training: {len(training)} discharges of {len({e.patient_key for e in training})}"
    )
    return described, len(shared)


def _examples(examples: list[Example]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.array(feature_matrix(examples), dtype=float), np.array(
        [e.label for e in examples], dtype=float
    )


def _feedback_loop(
    store: Store,
    base: Cohort,
    champion: UpdatedRiskModel,
    serving_since: datetime,
    round_start: datetime,
    true_risks: dict[str, float],
    policy: GatePolicy,
) -> FeedbackLoop | None:
    """The feedback-loop trap (see feedback_loop) on what the service served: to learn from,
    the discharges of the rounds the champion has served since ``serving_since`` (whose
    treated outcomes are its own cards' doing, and which it was not fitted on); this
    round's discharges (from ``round_start``) to judge on."""
    served = served_examples(store, READMISSION_30D)
    return feedback_loop(
        base.examples,
        [e for e in served if serving_since <= e.predicted_at < round_start],
        [e for e in served if e.predicted_at >= round_start],
        champion,
        true_risks,
        policy,
    )


def feedback_loop(
    original: list[Example],
    earlier: list[Example],
    current: list[Example],
    champion: UpdatedRiskModel,
    true_risks: Mapping[str, float],
    policy: GatePolicy,
) -> FeedbackLoop | None:
    """What learning from treated outcomes does (see FeedbackLoop). Two updates of the
    champion (models/updating.py) on the original records and the ``earlier`` served
    discharges, weighted as retraining weights them: one as retraining does it, without the
    treated; one with them. The gate judges the second against the first on the
    ``current`` discharges of new patients, all of them and the untreated only, and both
    are scored against their true risks (``true_risks``, by patient key). None when nothing
    was served before or the untreated hold one outcome only."""
    untreated = [e for e in current if e.feedback not in TREATED]
    if not earlier or len({e.label for e in untreated}) < 2:
        return None

    def update(examples: list[Example]) -> UpdateChoice:
        weight = served_weight(len(original), len(examples), 0.5)
        X, y = _examples(original + examples)
        weights = np.array([1.0] * len(original) + [weight] * len(examples))
        return choose_update(X, y, Reference.of(champion), weights=weights)

    careful = update([e for e in earlier if e.feedback not in TREATED]).model
    naive = update(earlier)
    verdicts = []
    for judged in (current, untreated):
        X_now, y_now = _examples(judged)
        verdicts.append(
            decide(
                y_now,
                careful.predict_proba(X_now)[:, 1],
                naive.model.predict_proba(X_now)[:, 1],
                {},
                policy,
                patients=[e.patient_key for e in judged],
            )
        )
    on_all, on_untreated = verdicts
    X_now, _ = _examples(current)
    truth = np.array([true_risks[e.patient_key] for e in current])
    return FeedbackLoop(
        method=naive.method,
        calibration_gain_all=on_all.calibration_gain,
        auroc_gain_all=on_all.auroc_gain,
        promoted_on_all=on_all.promote,
        calibration_gain_untreated=on_untreated.calibration_gain,
        auroc_gain_untreated=on_untreated.auroc_gain,
        promoted_on_untreated=on_untreated.promote,
        failed_on_untreated=[c.name for c in on_untreated.checks if not c.passed],
        truth_careful=score_against_truth(truth, careful.predict_proba(X_now)[:, 1]),
        truth_naive=score_against_truth(truth, naive.model.predict_proba(X_now)[:, 1]),
        careful_model=careful,
        naive_model=naive.model,
    )


def _decision_reason(result: RetrainResult) -> str:
    """Why the gate decided as it did, in a line: the failed checks, or what made it better."""
    gate = result.gate
    if gate is None:
        return "no champion: the first model serves"
    failed = [c.name for c in gate.checks if not c.passed]
    if failed:
        reason = "failed: " + "; ".join(failed)
    else:
        reason = f"AUROC {gate.auroc_gain.value:+.3f}, miscalibration {-gate.calibration_gain.value:+.3f}"
    if result.recalibrated_version:
        reason += f"; champion miscalibrated ({gate.champion_alerts[0].split(' (')[0]})"
    return reason


def _model(settings: Settings, version: str) -> UpdatedRiskModel:
    model = load_served_model(settings.mlflow, READMISSION_30D.registered_model, version).model
    assert isinstance(model, UpdatedRiskModel)
    return model


def _truth_line(score: TruthScore | None) -> str:
    return "-" if score is None else f"{score.auroc:.3f} / {score.mean_absolute_error:.3f}"


def _trap_line(loop: FeedbackLoop, champion: str) -> str:
    """The feedback-loop comparison in words: how each judgement sees the update that learnt
    from treated outcomes, and what the truth says."""

    def judged(promoted: bool, gain: Estimate) -> str:
        looks = "better" if gain.value > 0 else "worse"
        return f"looks {looks} calibrated, {_signed(gain, promoted)}"

    failed = ", ".join(loop.failed_on_untreated) or "none"
    return (
        f"v{champion} updated ({loop.method}) on the discharges it served with their treated "
        "outcomes, against the same update without them (as retraining does it). Judged on "
        f"all of this round's discharges it "
        f"{judged(loop.promoted_on_all, loop.calibration_gain_all)}; on the untreated only it "
        f"{judged(loop.promoted_on_untreated, loop.calibration_gain_untreated)} (failed: "
        f"{failed}). Truth: with the treated {loop.truth_naive}; without {loop.truth_careful}"
    )


def _signed(gain: Estimate, promoted: bool) -> str:
    verdict = "promoted" if promoted else "refused"
    return f"{gain.value:+.3f} ({gain.low:+.3f} to {gain.high:+.3f}) {verdict}"


def _truth_calibration(score: TruthScore) -> str:
    return f"{score.predicted_to_true:.2f} / {score.mean_absolute_error:.3f}"


def _rate(events: int, n: int) -> str:
    return f"{events / n:.0%}" if n else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=1000, help="discharges per round")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--world",
        choices=sorted(WORLDS),
        default="confounded",
        help="the simulated world (demo/world.py): "
        + "; ".join(f"{w.name}: {w.description}" for w in WORLDS.values()),
    )
    parser.add_argument(
        "--truth-patients",
        type=int,
        default=300,
        help="new patients per round on whose true risks the decision's effect is measured",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument(
        "--experiment",
        action="store_true",
        help=f"also run the LACE card experiment of {EXPERIMENT.relative_to(ROOT)} "
        "(two wordings and a holdout); clinicians accept the wordings at "
        + " and ".join(f"{p:.0%}" for p in LACE_ACCEPTANCE.values()),
    )
    parser.add_argument(
        "--outbreak",
        action="store_true",
        help="instead of the learning loop: years of influenza-like illness in four areas "
        "through the outcomes feed, an outbreak injected in one, the signal the service "
        "raises, its plot, and the card it puts before clinicians",
    )
    parser.add_argument(
        "--experiment-patients",
        type=int,
        default=900,
        help="with --experiment: discharges of frequent attenders (LACE 15) randomized to its arms",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    say = lambda message: typer.echo(f"[{time.perf_counter() - started:6.1f}s] {message}")  # noqa: E731
    rng = random.Random(args.seed)
    patients = default_patients()
    if not patients.is_dir() and not args.outbreak:
        raise SystemExit(f"the synthetic patients are needed at {patients}")
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    minter = TokenMinter("ES384", issuer="https://demo-ehr.example")
    env = {
        "LHS_DATA_DIR": str(args.data_dir),
        "LHS_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "LHS_AUTH": "on",
        "LHS_MODEL_REFRESH_SECONDS": "1",
        "LHS_SPOOL_DRAIN_INTERVAL": "1",
        "LHS_LOG_LEVEL": "WARNING",
        "LHS_KNOWLEDGE_DIR": str(_knowledge_copy(args.data_dir)),
    }
    os.environ.update(env)
    settings = Settings()
    registry = ClientRegistry(settings.resolved_clients_file)
    # The demo's one client is the EHR and the informatician reading signals and reports.
    registry.clients[minter.issuer] = ClientRegistration(
        iss=minter.issuer, jwks=minter.jwks(), informatician=True
    )
    registry.save()
    subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "upgrade"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    store = Store(create_db_engine(settings.resolved_database_url))
    if args.outbreak:
        service = Server("cds_service.asgi:app", env | {"LHS_SURVEILLANCE_INTERVAL_SECONDS": "2"})
        try:
            service.wait_ready("/healthz")
            outbreak.run(service.url, minter, store, args.data_dir, args.seed, say)
        finally:
            service.stop()
        say("done.")
        return
    experiment = load_experiment(EXPERIMENT) if args.experiment else None

    paths = list(patient_bundles(default_patients()))
    say(f"building the training cohort from {len(paths)} synthetic patients ...")
    features = ReadmissionFeatures(load_library())
    base = build_cohort(paths, READMISSION_30D, features, PSEUDONYM_KEY.encode())
    options = TrainingOptions(seed=args.seed, bootstrap_rounds=100)
    policy = GatePolicy(bootstrap_rounds=100)
    world = WORLDS[args.world]
    first = train_task(READMISSION_30D, base, settings.mlflow, options, progress=lambda _: None)
    say(f"first model: v{first.version} @champion, test AUROC {first.test_metrics['auroc']}")

    service = Server("cds_service.asgi:app", env)
    results: list[RoundStats] = []
    library = load_library(settings.knowledge_dir)
    analysis: ExperimentAnalysis | None = None
    lace = library.rule(LACE_RULE).artifact
    try:
        service.wait_ready("/healthz")
        if experiment is not None:
            candidate = args.data_dir / "lace-from-12.yaml"
            candidate.write_text(
                _lace_version(
                    lace,
                    "2.0.0",
                    "high risk from a LACE index of 12",
                    "fewer cards, if the patients at 10 and 11 are rarely readmitted",
                    thresholds={**lace.thresholds, "high_risk_min_score": 12},
                )
            )
            start_rule_shadow(store, SHADOW, candidate, library, "make demo")
            say(f"shadow run {SHADOW} started: {LACE_RULE} 2.0.0 beside {lace.version}")
            _wait_for(partial(_shadows, service.url, SHADOW))
        clinic = Clinic(service.url, minter, rng, world)
        templates = _hospital_patients(paths, len(paths))
        say(f"world {world.name}: {world.description} ({SIMULATION_ASSUMPTION})")
        clock = serving_since = datetime(2021, 4, 1, tzinfo=UTC)
        for number in range(1, args.rounds + 1):
            clinic.round_number = number
            stats = RoundStats(number, "drifted" if world.drifted(number) else "as before")
            ready = httpx.get(service.url + "/readyz").json()
            stats.model_version = ready["models"][READMISSION_30D.registered_model]["version"]
            champion = _model(settings, stats.model_version)
            # Every discharge is of a new person (demo/world.py): none is served twice.
            with typer.progressbar(
                range(args.patients), label=f"round {number}: discharges"
            ) as bar:
                for _ in bar:
                    patient = new_patient(rng.choice(templates), world, number, rng)
                    clinic.visit(patient, clock + timedelta(days=rng.uniform(0, 40)), stats)
            round_start, round_end = clock, clock + timedelta(days=45)
            labelled = label_predictions(store, datetime.now(UTC))
            served = [  # this round's predictions
                p
                for p in store.labelled_predictions(READMISSION_30D.registered_model)
                if round_start <= p.prediction_time < round_end
            ]
            clock = round_end
            y = np.array([p.label for p in served], dtype=float)
            if 0 < y.sum() < len(y):
                stats.auroc = evaluate_risks(
                    y, np.array([p.risk for p in served]), rounds=0, names=("auroc",)
                )["auroc"].value
            say(
                f"round {number} ({world.name} world, {stats.world_state}): "
                f"{stats.calls} discharges of new patients, {stats.cards} cards, "
                f"{stats.accepted} accepted; 30-day rate treated "
                f"{_rate(stats.events_treated, stats.treated)}, untreated "
                f"{_rate(stats.events_untreated, stats.untreated)}; "
                f"{labelled.labelled} predictions labelled; retraining ..."
            )
            result = retrain(
                READMISSION_30D,
                base,
                store,
                settings.mlflow,
                policy=policy,
                options=options,
                decided_by="make demo",
            )
            stats.gate = f"v{result.challenger_version}: {result.decision}"
            if result.recalibrated_version:
                stats.gate += (
                    f"; v{result.recalibrated_version}: v{result.champion_version} recalibrated"
                )
            stats.decision = result.decision
            stats.reason = _decision_reason(result)
            serving = (
                result.challenger_version
                if result.decision == "promoted"
                else result.recalibrated_version
            )
            stats.serving_after = serving or stats.model_version
            stats.window, stats.window_shared_patients = _gate_window(
                store, base, options.test_fraction
            )
            say(f"  gate: {stats.gate}: {stats.reason}")
            say(
                f"  gate window: {stats.window}; "
                f"patients on both sides: {stats.window_shared_patients}"
            )
            loop = _feedback_loop(
                store, base, champion, serving_since, round_start, clinic.true_risks, policy
            )
            stats.feedback_loop = loop
            if loop is not None:
                say(f"  the feedback-loop trap: {_trap_line(loop, stats.model_version)}")
            panel_X, panel_truth = clinic.truth_panel(
                templates,
                args.truth_patients,
                number + 1,
                clock,
                random.Random(args.seed * 1000 + number),
            )
            stats.truth_before = score_against_truth(
                panel_truth, champion.predict_proba(panel_X)[:, 1]
            )
            stats.truth_challenger = score_against_truth(
                panel_truth,
                _model(settings, result.challenger_version).predict_proba(panel_X)[:, 1],
            )
            stats.truth_after = score_against_truth(
                panel_truth, _model(settings, stats.serving_after).predict_proba(panel_X)[:, 1]
            )
            say(
                f"  truth on {len(panel_truth)} new patients of round {number + 1}'s world: "
                f"v{stats.model_version} {stats.truth_before}; challenger "
                f"v{result.challenger_version} {stats.truth_challenger}; now serving "
                f"v{stats.serving_after}"
            )
            results.append(stats)
            if serving:
                serving_since = clock
                _wait_for(partial(_serves, service.url, serving))
        if experiment is not None:
            start_experiment(store, experiment, library, "make demo")
            say(f"experiment {experiment.id} started: " + ", ".join(a.id for a in experiment.arms))
            _wait_for(partial(_runs, service.url, experiment.id))
            # The experiment's own patients, with their own random stream so the model rounds
            # above are the same with or without it; discharged 40 days ago, so their 30-day
            # outcome windows have closed.
            trial = Clinic(
                service.url,
                minter,
                random.Random(args.seed + 1),
                world,
                _action_first_opening(experiment),
            )
            discharged = datetime.now(UTC) - timedelta(days=40)
            with typer.progressbar(
                range(args.experiment_patients), label="experiment: discharges"
            ) as bar:
                for i in bar:
                    trial.serve(
                        *_frequent_attender(i, discharged, trial.rng),
                        RoundStats(0),
                        trial.rng.gauss(0.0, 1.0),
                    )
            analysis = analyze(
                experiment, experiment_patients(store, experiment, datetime.now(UTC))
            )
            _propose_the_winner(store, experiment, analysis, lace, settings.knowledge_dir)
        report = args.data_dir / "learning-report.html"
        now = datetime.now(UTC)
        data = gather_report(store, now - timedelta(days=1), now + timedelta(minutes=1))
        report.write_text(render_report(data), encoding="utf-8")
        _log_report(settings, report, data)
    finally:
        service.stop()

    typer.echo("")
    typer.echo(
        f"{'round':<6}{'model':<7}{'calls':>6}{'cards':>6}{'accepted':>9}{'AUROC':>7}"
        f"{'30-day rate, treated':>22}{'untreated':>11}   gate"
    )
    for s in results:
        auroc = "-" if s.auroc is None else f"{s.auroc:.2f}"
        accepted = _rate(s.accepted, s.cards)
        typer.echo(
            f"{s.number:<6}{'v' + s.model_version:<7}{s.calls:>6}{s.cards:>6}{accepted:>9}{auroc:>7}"
            f"{_rate(s.events_treated, s.treated):>22}{_rate(s.events_untreated, s.untreated):>11}   {s.gate}"
        )
    typer.echo("")
    typer.echo(
        f"What each decision did to the truth ({world.name} world; true AUROC / mean |error| "
        f"against the true risks of {args.truth_patients} new patients of the next round's "
        f"world; {SIMULATION_ASSUMPTION}):"
    )
    typer.echo(
        f"{'round':<6}{'world':<11}{'decision':<19}{'serving before':>22}{'after':>22}   reason"
    )
    for s in results:
        before = f"v{s.model_version} {_truth_line(s.truth_before)}"
        after = f"v{s.serving_after} {_truth_line(s.truth_after)}"
        typer.echo(
            f"{s.number:<6}{s.world_state:<11}{s.decision:<19}{before:>22}{after:>22}   {s.reason}"
        )
    trapped = [s for s in results if s.feedback_loop is not None]
    if trapped:
        typer.echo("")
        typer.echo(
            "The feedback-loop trap: the champion updated on the discharges it served with "
            "their treated outcomes (naive) against without them (as retraining does it); "
            "miscalibration reduction of the naive update, judged on all of the round's "
            "discharges and on its untreated; the truth's predicted/true and mean |error|:"
        )
        typer.echo(
            f"{'round':<6}{'update':<28}{'on all':>36}{'on untreated':>36}"
            f"{'naive':>14}{'careful':>14}"
        )
        for s in trapped:
            loop = s.feedback_loop
            assert loop is not None
            typer.echo(
                f"{s.number:<6}{loop.method:<28}"
                f"{_signed(loop.calibration_gain_all, loop.promoted_on_all):>36}"
                f"{_signed(loop.calibration_gain_untreated, loop.promoted_on_untreated):>36}"
                f"{_truth_calibration(loop.truth_naive):>14}"
                f"{_truth_calibration(loop.truth_careful):>14}"
            )
    typer.echo("")
    (args.data_dir / "rounds.json").write_text(
        json.dumps(
            [dataclasses.asdict(s, dict_factory=_without_models) for s in results],
            indent=1,
            default=str,
        )
    )
    if experiment is not None and analysis is not None:
        typer.echo(render_shadow(shadow_summary(store, _shadow_run(store, SHADOW))))
        typer.echo("")
        typer.echo(render_analysis(analysis))
        truth = LACE_ACCEPTANCE["action-first"] - LACE_ACCEPTANCE["current"]
        found = analysis.acceptance.get("action-first")
        if found is not None:
            inside = found.ci_low <= truth <= found.ci_high
            typer.echo(
                f"true effect on acceptance set in the simulation: {truth:+.3f}; "
                f"{'inside' if inside else 'OUTSIDE'} the 95% CI "
                f"({found.ci_low:+.3f} to {found.ci_high:+.3f})"
            )
        log_analysis(settings, analysis)
        typer.echo("")
        latest = rule_history(store, LACE_RULE, settings.knowledge_dir)[0]
        if latest.proposal is None:
            typer.echo(f"no change proposed: {LACE_RULE} stays at v{latest.version}")
        else:
            p = latest.proposal
            typer.echo(
                f"{LACE_RULE} v{p.from_version} -> v{p.to_version} ({p.source}): proposed by "
                f"{p.proposed_by}, approved by {p.reviewed_by}: {p.review_note}\n"
                f"installed in {settings.knowledge_dir}; see LHS_DATA_DIR={args.data_dir} "
                f"LHS_KNOWLEDGE_DIR={settings.knowledge_dir} .venv/bin/lhs knowledge history "
                f"{LACE_RULE}"
            )
        typer.echo("")
    say("done.")
    typer.echo(
        f"MLflow:  LHS_DATA_DIR={args.data_dir} make mlflow   (experiment readmission-30d: runs and gate decisions)"
    )
    if experiment is not None:
        typer.echo(
            f"Experiment: LHS_DATA_DIR={args.data_dir} .venv/bin/lhs experiment analyze "
            f"{experiment.id}   (MLflow experiment rule-experiments)"
        )
    typer.echo(f"Report:  {report}")


if __name__ == "__main__":
    main()

"""The simulated clinic: every part of the learning loop, end to end, on embedded defaults.

Rounds of discharges (synthetic patients from ../shared, and generated ones: copies with a
new identity and a shifted age) are sent to the running service over HTTP with a signed
CDS client JWT. Simulated clinicians accept or override the model's cards, more often
accepting when the patient's true risk is high. Outcomes arrive through the outcomes
endpoint, drawn from a ground-truth risk in which accepted transitional care lowers the
risk. After each round the predictions are labelled, a challenger is retrained on what
was served and the gate decides; a promoted model is hot-swapped into the running service.

The ground truth is a simulation device, not clinical knowledge: the first model's own
risk, shifted in ways that only retraining on served data can learn.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import typer

from bench.bench import ROOT, SHARED, Server, TokenMinter
from cds_service.analytics_cli import gather_report
from cds_service.app import build_services
from cds_service.auth import ClientRegistration, ClientRegistry
from cds_service.config import Settings
from cds_service.examples import EXAMPLES
from cds_service.experiment_registry import experiment_patients, start_experiment
from cds_service.experiments_cli import log_analysis
from cds_service.experiments_cli import render as render_analysis
from cds_service.storage.db import create_db_engine
from cds_service.storage.repository import Store
from cds_service.sweep import hook_request, load_bundle, patient_bundles
from evaluation.experiment_analysis import analyze
from evaluation.gate import GatePolicy
from evaluation.metrics import evaluate_risks
from evaluation.report import render_report
from fhir_client.local_store import LocalFhirStore
from fhir_client.record import PatientRecord
from knowledge.experiment import EXPERIMENTS_DIR, ExperimentDefinition, load_experiment
from knowledge.library import load_library
from models.cohort import build_cohort
from models.features import FEATURE_NAMES, ReadmissionFeatures
from models.labels import label_predictions
from models.retraining import retrain
from models.risk_model import RiskModel
from models.serving import load_served_model
from models.tasks import READMISSION_30D
from models.training import TrainingOptions, train_task

SERVICE = "lhs-encounter-discharge"
FHIR_BASE = "https://demo-ehr.example/fhir"
LOCAL_LOG_ODDS = {
    "age_years": 0.03,
    "length_of_stay_days": 0.2,
    "heart_failure": 1.5,
    "active_conditions": 0.1,
}
"""Per unit of each feature, what the clinic adds to the risk's log-odds (a simulation
device: here older, multimorbid patients, heart failure and long stays return more often
than the synthetic records taught the first model)."""
LOCAL_INTERCEPT = -2.5
FIRST_MODEL_SHARE = 0.5
"""How much of the first model's log-odds holds in the clinic."""
TREATMENT_RELATIVE_RISK = 0.6
"""Accepted transitional care multiplies the true risk by this (the simulated benefit)."""
LACE_RULE = "lace-readmission-risk"
EXPERIMENT = EXPERIMENTS_DIR / "lace-follow-up-wording.yaml"
LACE_ACCEPTANCE = {"current": 0.35, "action-first": 0.50}
"""With --experiment: how often clinicians accept each wording of the LACE card. The true
effect of the action-first wording on acceptance is their difference, +0.15."""


def true_risk(world: RiskModel, features: dict[str, float]) -> float:
    """The simulated clinic's risk: part of what the first model learnt from the synthetic
    records, plus local effects it does not know (LOCAL_LOG_ODDS). The first model ranks
    these patients less well and underestimates their risk until a model retrained on
    served data replaces it."""
    first = world.assess([features[name] for name in FEATURE_NAMES])[0]
    logit = (
        FIRST_MODEL_SHARE * math.log(first / (1 - first))
        + LOCAL_INTERCEPT
        + sum(weight * features[name] for name, weight in LOCAL_LOG_ODDS.items())
    )
    return 1 / (1 + math.exp(-logit))


@dataclass
class RoundStats:
    number: int
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
    risks: list[float] = field(default_factory=list)


@dataclass
class Patient:
    bundle: dict
    patient_id: str


def _generated(bundle: dict, rng: random.Random) -> dict:
    """A new patient: the record of a real synthetic one under a new id, birth date shifted."""
    clone = copy.deepcopy(bundle)
    new = str(uuid.UUID(int=rng.getrandbits(128)))
    for entry in clone["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["id"] = new
            born = datetime.fromisoformat(resource["birthDate"])
            resource["birthDate"] = (
                (born - timedelta(days=365 * rng.randint(-8, 8))).date().isoformat()
            )
            resource.pop("name", None)
        for key in ("subject", "patient"):
            if isinstance(resource.get(key), dict):
                resource[key]["reference"] = f"Patient/{new}"
    return clone


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
    found = []
    for path in paths:
        bundle = load_bundle(path)
        if any(
            e["resource"]["resourceType"] == "Encounter"
            and e["resource"].get("class", {}).get("code") in {"IMP", "EMER"}
            for e in bundle["entry"]
        ):
            found.append(bundle)
            if len(found) == wanted:
                break
    return found


def _discharge(patient_id: str, when: datetime, rng: random.Random) -> dict:
    emergency = rng.random() < 0.45
    hours = rng.uniform(2, 8) if emergency else rng.uniform(24, 24 * 7)
    return {
        "resourceType": "Encounter",
        "id": f"demo-{uuid.UUID(int=rng.getrandbits(128))}",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "EMER" if emergency else "IMP",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": when.isoformat(), "end": (when + timedelta(hours=hours)).isoformat()},
    }


class Clinic:
    def __init__(
        self,
        url: str,
        minter: TokenMinter,
        rng: random.Random,
        world: RiskModel,
        lace_wording: str | None = None,
    ) -> None:
        self.world = world
        self.lace_wording = lace_wording
        """With the experiment: how the action-first LACE card begins (clinicians answer it)."""
        self.url = url
        self.minter = minter
        self.rng = rng
        self.http = httpx.Client(timeout=30)
        self.service = build_services(load_library())[SERVICE]
        self.features = ReadmissionFeatures(load_library())

    def _post(self, path: str, body: dict, params: dict | None = None) -> httpx.Response:
        token = self.minter.mint(self.url + path)
        response = self.http.post(
            self.url + path, json=body, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return response

    def _answer(self, card: dict, accepted: bool, override_reason: str) -> None:
        item = {
            "card": card["uuid"],
            "outcome": "accepted" if accepted else "overridden",
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
        }
        if accepted:
            item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
        else:
            reason = next(r for r in card["overrideReasons"] if r["code"] == override_reason)
            item["overrideReason"] = {"reason": reason}
        self._post(f"/cds-services/{SERVICE}/feedback", {"feedback": [item]})

    def visit(self, patient: Patient, when: datetime, stats: RoundStats) -> None:
        store = LocalFhirStore.from_bundles([patient.bundle])
        encounter = _discharge(patient.patient_id, when, self.rng)
        store.add(encounter)
        context = {
            "userId": "Practitioner/demo-clinician",
            "patientId": patient.patient_id,
            "encounterId": encounter["id"],
        }
        request = hook_request(store, self.service, context)
        resources = [e["resource"] for e in patient.bundle["entry"]] + [encounter]
        self.serve(request, resources, encounter, stats)

    def serve(
        self, request: dict, resources: list[dict], encounter: dict, stats: RoundStats
    ) -> None:
        """Call the service for a discharge, answer its cards as a clinician would, and
        report what happens to the patient in the next 30 days."""
        patient_id = request["context"]["patientId"]
        cards = self._post(f"/cds-services/{SERVICE}", request).json()["cards"]
        stats.calls += 1
        record = PatientRecord.from_resources(patient_id, resources)
        discharged = datetime.fromisoformat(encounter["period"]["end"])
        risk = true_risk(self.world, self.features(record, encounter, discharged) or {})
        card = next(
            (c for c in cards if c["source"]["topic"]["code"] == READMISSION_30D.registered_model),
            None,
        )
        treated = False
        if card is not None:
            stats.cards += 1
            treated = self.rng.random() < min(0.9, 0.15 + 2.5 * risk)  # relevant cards get accepted
            stats.accepted += treated
            stats.overridden += not treated
            self._answer(card, treated, "not-applicable" if risk < 0.1 else "patient-declined")
        lace = next((c for c in cards if c["source"]["topic"]["code"] == LACE_RULE), None)
        if self.lace_wording is not None and lace is not None:
            wording = "action-first" if lace["summary"].startswith(self.lace_wording) else "current"
            accepted = self.rng.random() < LACE_ACCEPTANCE[wording]
            self._answer(lace, accepted, "already-addressed")
            treated = treated or accepted
        if treated:
            risk *= TREATMENT_RELATIVE_RISK
        event = self.rng.random() < risk
        stats.treated += treated
        stats.untreated += not treated
        stats.events_treated += event and treated
        stats.events_untreated += event and not treated
        if event:
            start = discharged + timedelta(days=self.rng.uniform(1, 29))
            revisit = _discharge(patient_id, start, self.rng) | {"class": {"code": "EMER"}}
            self._post(
                "/outcomes",
                {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": revisit}]},
            )


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


def _rate(events: int, n: int) -> str:
    return f"{events / n:.0%}" if n else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--patients", type=int, default=400, help="discharges per round")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument(
        "--experiment",
        action="store_true",
        help=f"also run the LACE card experiment of {EXPERIMENT.relative_to(ROOT)} "
        "(two wordings and a holdout); clinicians accept the wordings at "
        + " and ".join(f"{p:.0%}" for p in LACE_ACCEPTANCE.values()),
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
    if not SHARED.is_dir():
        raise SystemExit(f"the synthetic patients are needed at {SHARED}")
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    minter = TokenMinter("ES384", issuer="https://demo-ehr.example")
    env = {
        "LHS_DATA_DIR": str(args.data_dir),
        "LHS_PSEUDONYM_KEY": "demo",
        "LHS_AUTH": "on",
        "LHS_MODEL_REFRESH_SECONDS": "1",
        "LHS_SPOOL_DRAIN_INTERVAL": "1",
        "LHS_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    settings = Settings()
    registry = ClientRegistry(settings.resolved_clients_file)
    registry.clients[minter.issuer] = ClientRegistration(iss=minter.issuer, jwks=minter.jwks())
    registry.save()
    subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "db", "upgrade"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    store = Store(create_db_engine(settings.resolved_database_url))
    experiment = load_experiment(EXPERIMENT) if args.experiment else None

    paths = list(patient_bundles(SHARED))
    say(f"building the training cohort from {len(paths)} synthetic patients ...")
    features = ReadmissionFeatures(load_library())
    base = build_cohort(paths, READMISSION_30D, features, b"demo")
    options = TrainingOptions(seed=args.seed, bootstrap_rounds=100)
    first = train_task(READMISSION_30D, base, settings.mlflow, options, progress=lambda _: None)
    say(f"first model: v{first.version} @champion, test AUROC {first.test_metrics['auroc']}")

    service = Server("cds_service.asgi:app", env)
    results: list[RoundStats] = []
    try:
        service.wait_ready("/healthz")
        world = load_served_model(
            settings.mlflow, READMISSION_30D.registered_model, first.version
        ).model
        clinic = Clinic(service.url, minter, rng, world)
        clock = datetime(2021, 4, 1, tzinfo=UTC)
        for number in range(1, args.rounds + 1):
            stats = RoundStats(number)
            # Each round sees other patients: half of them real records, half generated.
            bundles = _hospital_patients(rng.sample(paths, len(paths)), args.patients // 2 + 1)
            ready = httpx.get(service.url + "/readyz").json()
            stats.model_version = ready["models"][READMISSION_30D.registered_model]["version"]
            with typer.progressbar(
                range(args.patients), label=f"round {number}: discharges"
            ) as bar:
                for i in bar:
                    bundle = bundles[(i // 2) % len(bundles)]
                    if i % 2:
                        bundle = _generated(bundle, rng)
                    pid = next(
                        e["resource"]["id"]
                        for e in bundle["entry"]
                        if e["resource"]["resourceType"] == "Patient"
                    )
                    clinic.visit(
                        Patient(bundle, pid), clock + timedelta(days=rng.uniform(0, 40)), stats
                    )
            round_end = clock + timedelta(days=45)
            labelled = label_predictions(store, datetime.now(UTC))
            served = [  # this round's predictions
                p
                for p in store.labelled_predictions(READMISSION_30D.registered_model)
                if clock <= p.prediction_time < round_end
            ]
            clock = round_end
            y = np.array([p.label for p in served], dtype=float)
            if 0 < y.sum() < len(y):
                stats.auroc = evaluate_risks(
                    y, np.array([p.risk for p in served]), rounds=0, names=("auroc",)
                )["auroc"].value
            say(f"round {number}: {labelled.labelled} predictions labelled; retraining ...")
            result = retrain(
                READMISSION_30D,
                base,
                store,
                settings.mlflow,
                policy=GatePolicy(bootstrap_rounds=100),
                options=options,
                decided_by="make demo",
            )
            stats.gate = f"v{result.challenger_version}: {result.decision}"
            results.append(stats)
            if result.decision == "promoted":
                _wait_for(partial(_serves, service.url, result.challenger_version))
        if experiment is not None:
            start_experiment(store, experiment, load_library(), "make demo")
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
                    trial.serve(*_frequent_attender(i, discharged, trial.rng), RoundStats(0))
        report = args.data_dir / "learning-report.html"
        now = datetime.now(UTC)
        report.write_text(
            render_report(
                gather_report(store, now - timedelta(days=1), now + timedelta(minutes=1))
            ),
            encoding="utf-8",
        )
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
    if experiment is not None:
        analysis = analyze(experiment, experiment_patients(store, experiment, datetime.now(UTC)))
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

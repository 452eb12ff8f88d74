"""The simulated world of `make demo`: who is discharged, their true risk, how clinicians
answer the model's card and what transitional care does. Pure and seeded: every function
takes its random stream, and nothing here calls the service.

**Every number in this module is a simulation assumption, not clinical knowledge.** They are
chosen to make learning hard in known ways, so that the demo can show the loop failing
where it should and succeeding where it can:

- **A misspecified learner.** The true 30-day risk is not a logistic model of the served
  features: it has a threshold (age 75 and over), interactions (a long stay counts only
  for multimorbid patients; heart failure only after an acute admission) and a step in the
  number of conditions, on top of LACE-type inputs. The service's learner is additive on
  the logit scale and cannot represent it.
- **A latent factor.** Each patient has a frailty (standard normal) that raises the true
  risk and that no served feature carries: the model never sees it.
- **Treatment effects that differ by subgroup.** Accepted transitional care multiplies the
  risk by ``TREATED_RELATIVE_RISK``: strongly from age 65, barely below.
- **New people only.** Every discharge is of a new patient: a synthetic record used as a
  template under a new identity (new id, no name, age shifted) with a frailty of its own.
  No patient is served twice, so the patients a challenger is trained on and those the
  gate evaluates it on are disjoint, and none of them is one of the first model's
  training patients (the templates' own identities).

The worlds (``--world``):

- ``honest``: clinicians accept the card at a constant rate, whoever the patient is.
  Treated patients are a random part of those shown a card; leaving them out (as
  retraining does) leaves an unbiased sample.
- ``confounded``: clinicians see the frailty the model cannot and accept the card far
  more often for frail patients (unmeasured confounding: the latent factor raises the
  risk *and* the chance of treatment). The untreated patients who had a card are the
  robust ones, and treated patients' outcomes are lowered by the treatment: whatever
  learns from either is misled.
- ``drift``: as honest, until ``drift_round``; from then on the baseline risk rises and
  the case mix changes (patients ten years older, more inpatient stays).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

SIMULATION_ASSUMPTION = "simulation assumption, not clinical knowledge"

BASELINE_LOG_ODDS = -2.9
FRAILTY_LOG_ODDS = 1.0
"""Per standard deviation of the latent frailty."""
OLD_AGE_YEARS = 75
OLD_AGE_LOG_ODDS = 1.0
"""A step at 75, not a slope: a linear age term cannot follow it."""
LONG_STAY_LOG_ODDS_PER_DAY = 0.3
"""Per day of stay (up to a week), for patients with a Charlson score of 2 or more only."""
HEART_FAILURE_AFTER_ACUTE_LOG_ODDS = 1.0
"""Heart failure raises the risk after an acute admission or emergency visit only."""
MANY_CONDITIONS = 8
MANY_CONDITIONS_LOG_ODDS = 0.6
TREATMENT_AGE_YEARS = 65
TREATED_RELATIVE_RISK = {"65 and over": 0.25, "under 65": 0.9}
"""What accepted transitional care multiplies the 30-day risk by, per age group."""
INPATIENT_SHARE = 0.55
"""Of discharges, how many end a hospital stay (the rest an emergency visit)."""


@dataclass(frozen=True)
class World:
    name: str
    description: str
    acceptance_log_odds: float
    """Clinicians' log-odds of accepting the model's card for a patient of average frailty."""
    acceptance_frailty_log_odds: float = 0.0
    """Added per standard deviation of frailty: above 0, unmeasured confounding."""
    drift_round: int | None = None
    """From this round on, the drifted world (None: never)."""
    drift_baseline_log_odds: float = 0.0
    drift_age_years: int = 0
    drift_inpatient_share: float = INPATIENT_SHARE

    def drifted(self, round_number: int) -> bool:
        return self.drift_round is not None and round_number >= self.drift_round

    def baseline_log_odds(self, round_number: int) -> float:
        drift = self.drift_baseline_log_odds if self.drifted(round_number) else 0.0
        return BASELINE_LOG_ODDS + drift

    def inpatient_share(self, round_number: int) -> float:
        return self.drift_inpatient_share if self.drifted(round_number) else INPATIENT_SHARE

    def age_shift_years(self, round_number: int) -> int:
        return self.drift_age_years if self.drifted(round_number) else 0


WORLDS: Mapping[str, World] = {
    "honest": World(
        "honest",
        "no confounding: clinicians accept half the cards whoever the patient is; no drift",
        acceptance_log_odds=0.0,
    ),
    "confounded": World(
        "confounded",
        "clinicians accept the card far more often for frail patients, whose frailty the "
        "model cannot see (unmeasured confounding); no drift",
        acceptance_log_odds=-0.5,
        acceptance_frailty_log_odds=2.5,
    ),
    "drift": World(
        "drift",
        "as honest until round 3; from then on a higher baseline risk (+0.8 log-odds), "
        "patients 10 years older and more inpatient stays",
        acceptance_log_odds=0.0,
        drift_round=3,
        drift_baseline_log_odds=0.8,
        drift_age_years=10,
        drift_inpatient_share=0.8,
    ),
}


@dataclass(frozen=True)
class SimulatedPatient:
    patient_id: str
    bundle: dict[str, Any]
    """The patient's FHIR record (a Bundle), as the EHR holds it."""
    frailty: float
    """The latent factor: in no FHIR resource, so in no served feature."""


def new_patient(
    template: dict[str, Any], world: World, round_number: int, rng: random.Random
) -> SimulatedPatient:
    """A new person: the template record under a new id, without a name, born up to eight
    years earlier or later (and ``world.age_shift_years`` earlier once drifted), with a
    frailty of their own."""
    # Only what changes is copied (a deep copy of a large record costs a hundred times the
    # features): the rest is shared with the template, which is never modified.
    clone = {
        **template,
        "entry": [{**e, "resource": dict(e["resource"])} for e in template["entry"]],
    }
    new = str(uuid.UUID(int=rng.getrandbits(128)))
    shift = rng.randint(-8, 8) + world.age_shift_years(round_number)
    for entry in clone["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["id"] = new
            born = datetime.fromisoformat(resource["birthDate"])
            resource["birthDate"] = (born - timedelta(days=365 * shift)).date().isoformat()
            resource.pop("name", None)
        for key in ("subject", "patient"):
            if isinstance(resource.get(key), dict):
                resource[key] = {**resource[key], "reference": f"Patient/{new}"}
    return SimulatedPatient(new, clone, rng.gauss(0.0, 1.0))


def encounter(
    patient_id: str, start: datetime, rng: random.Random, *, inpatient_share: float
) -> dict[str, Any]:
    """A finished FHIR Encounter: a hospital stay of one to seven days, or else an emergency
    visit of two to eight hours."""
    inpatient = rng.random() < inpatient_share
    hours = rng.uniform(24, 24 * 7) if inpatient else rng.uniform(2, 8)
    return {
        "resourceType": "Encounter",
        "id": f"demo-{uuid.UUID(int=rng.getrandbits(128))}",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP" if inpatient else "EMER",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()},
    }


def discharge(
    patient: SimulatedPatient,
    start: datetime,
    world: World,
    round_number: int,
    rng: random.Random,
) -> dict[str, Any]:
    """The stay (or emergency visit) the patient is discharged from, in the world's case mix."""
    return encounter(
        patient.patient_id, start, rng, inpatient_share=world.inpatient_share(round_number)
    )


def untreated_risk(
    world: World, features: Mapping[str, float], frailty: float, round_number: int
) -> float:
    """The true 30-day risk without transitional care (see the module docstring)."""
    acute = features["acute_admission"] or features["emergency_visit"]
    log_odds = (
        world.baseline_log_odds(round_number)
        + FRAILTY_LOG_ODDS * frailty
        + OLD_AGE_LOG_ODDS * (features["age_years"] >= OLD_AGE_YEARS)
        + LONG_STAY_LOG_ODDS_PER_DAY
        * min(features["length_of_stay_days"], 7)
        * (features["charlson_index"] >= 2)
        + HEART_FAILURE_AFTER_ACUTE_LOG_ODDS * (features["heart_failure"] > 0) * bool(acute)
        + MANY_CONDITIONS_LOG_ODDS * (features["active_conditions"] >= MANY_CONDITIONS)
    )
    return 1 / (1 + math.exp(-log_odds))


def treatment_group(features: Mapping[str, float]) -> str:
    return "65 and over" if features["age_years"] >= TREATMENT_AGE_YEARS else "under 65"


def treated_risk(features: Mapping[str, float], risk: float) -> float:
    """The risk after accepted transitional care: the subgroup's relative risk applied."""
    return risk * TREATED_RELATIVE_RISK[treatment_group(features)]


def acceptance_probability(world: World, frailty: float) -> float:
    """How likely a clinician accepts the model's card for this patient."""
    log_odds = world.acceptance_log_odds + world.acceptance_frailty_log_odds * frailty
    return 1 / (1 + math.exp(-log_odds))


@dataclass(frozen=True)
class TruthScore:
    """A model's risks judged against the world's true (untreated) risks, not outcomes."""

    auroc: float
    """The AUROC expected over outcomes drawn from the true risks: every pair of patients
    weighted by the chance that the first has the event and the second not."""
    mean_absolute_error: float
    """Mean |predicted - true risk|: 0 only for the truth itself."""
    predicted_to_true: float
    """Mean predicted risk over mean true risk (1: right on average)."""

    def __str__(self) -> str:
        return (
            f"true AUROC {self.auroc:.3f}, mean |error| {self.mean_absolute_error:.3f}, "
            f"predicted/true {self.predicted_to_true:.2f}"
        )


def score_against_truth(
    true_risk: NDArray[np.float64], predicted: NDArray[np.float64]
) -> TruthScore:
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(true_risk, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    # Each patient twice: once as an event (weight: true risk), once as none (the rest).
    labels = np.concatenate([np.ones(len(truth)), np.zeros(len(truth))])
    auroc = roc_auc_score(
        labels,
        np.concatenate([predicted, predicted]),
        sample_weight=np.concatenate([truth, 1 - truth]),
    )
    return TruthScore(
        auroc=float(auroc),
        mean_absolute_error=float(np.mean(np.abs(predicted - truth))),
        predicted_to_true=float(predicted.mean() / truth.mean()),
    )

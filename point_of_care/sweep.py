"""Run every service over a population of FHIR patient Bundles and count the cards.

Informaticians use it (``lhs sweep``) to see alert burden before a rule goes live; the
test suite uses the same requests to prove that every real record is answered. Each
request is built as an EHR would build it: the service's prefetch templates rendered
for the patient and answered from the patient's record.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_client.local_store import LocalFhirStore
from fhir_client.prefetch import prefetch_tokens, render_template
from hooks.context import HOOK_CONTEXTS
from point_of_care.invocation import Service

SWEEP_USER = "Practitioner/sweep"

# Ordered for patients with no medication history: acetaminophen 325 MG Oral Tablet
# (RxNorm 313782), the commonest order in the synthetic records.
_FALLBACK_DRAFT_RXNORM = "313782"


def _draft_order(store: LocalFhirStore, patient_id: str) -> dict[str, Any]:
    """The patient's most recent medication order, as a new draft (a realistic re-order)."""
    requests = store.search("MedicationRequest", {"patient": [patient_id]})
    latest = max(requests, key=lambda r: str(r.get("authoredOn", "")), default=None)
    if latest is not None:
        draft = copy.deepcopy(latest)
    else:
        draft = {
            "resourceType": "MedicationRequest",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": _FALLBACK_DRAFT_RXNORM,
                    }
                ]
            },
        }
    draft.update(id="sweep-draft", status="draft")
    draft.pop("authoredOn", None)
    return draft


def _discharge_encounter(store: LocalFhirStore, patient_id: str) -> str | None:
    """The latest inpatient encounter, else the latest encounter of any class."""
    encounters = store.search("Encounter", {"patient": [patient_id]})

    def start(e: Mapping[str, Any]) -> str:
        return str((e.get("period") or {}).get("start", ""))

    inpatient = [e for e in encounters if (e.get("class") or {}).get("code") == "IMP"]
    latest = max(inpatient or encounters, key=start, default=None)
    return str(latest["id"]) if latest else None


def requests_for_patient(
    bundle: Mapping[str, Any], services: Mapping[str, Service]
) -> Iterator[tuple[Service, dict[str, Any]]]:
    """One complete hook request per service for the patient in ``bundle``."""
    store = LocalFhirStore.from_bundles([bundle])
    (patient_id,) = store.patient_ids()
    draft = _draft_order(store, patient_id)
    encounter_id = _discharge_encounter(store, patient_id)
    for service in services.values():
        hook = service.definition.hook
        context: dict[str, Any] = {"userId": SWEEP_USER, "patientId": patient_id}
        if hook in ("order-select", "order-sign"):
            context["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
        if hook == "order-select":
            context["selections"] = ["MedicationRequest/sweep-draft"]
        if hook == "encounter-discharge":
            if encounter_id is None:
                continue
            context["encounterId"] = encounter_id
        yield service, hook_request(store, service, context)


def hook_request(
    store: LocalFhirStore, service: Service, context: dict[str, Any]
) -> dict[str, Any]:
    """A request for ``service`` with ``context``, its prefetch answered from ``store``."""
    hook = service.definition.hook
    tokens = prefetch_tokens(HOOK_CONTEXTS[hook].model_validate(context))
    prefetch = {
        key: store.query(render_template(template, tokens))
        for key, template in service.definition.prefetch.items()
    }
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch,
    }


@dataclass
class SweepSummary:
    """Cards per service, rule and indicator over a population; who got none; what failed."""

    patients: int = 0
    cards: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    patients_with_cards: Counter[str] = field(default_factory=Counter)
    patients_without_cards: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def add_patient(self, cards_by_service: Mapping[str, list[tuple[str, str]]]) -> None:
        """Record one patient's cards: per service, a list of (rule id, indicator)."""
        self.patients += 1
        rules_hit: set[str] = set()
        for service_id, cards in cards_by_service.items():
            for rule_id, indicator in cards:
                self.cards[(service_id, rule_id, indicator)] += 1
                rules_hit.add(rule_id)
        for rule_id in rules_hit:
            self.patients_with_cards[rule_id] += 1
        if not rules_hit:
            self.patients_without_cards += 1

    def table(self) -> str:
        lines = [f"{'service':<26} {'rule':<36} {'indicator':<9} {'cards':>6}"]
        for (service_id, rule_id, indicator), count in sorted(self.cards.items()):
            lines.append(f"{service_id:<26} {rule_id:<36} {indicator:<9} {count:>6}")
        lines.append("")
        lines.append(
            f"patients: {self.patients}; with no card at all: {self.patients_without_cards}"
        )
        for rule_id, count in sorted(self.patients_with_cards.items()):
            lines.append(
                f"  {rule_id}: {count} patients ({100 * count / max(self.patients, 1):.1f}%)"
            )
        if self.errors:
            lines.append(f"errors: {dict(self.errors)}")
        return "\n".join(lines)

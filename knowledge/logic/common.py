"""Small helpers shared by rule logic: value-set lookups, condition history, FHIR suggestions."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from fhir_client.codes import RXNORM
from fhir_client.fhirdates import parse_fhir_datetime
from fhir_client.record import Code, MedicationEntry, PatientRecord, codes_of
from hooks.cards import Action, Suggestion
from knowledge.rule import Knowledge

_REFUTED = frozenset({"refuted", "entered-in-error"})


def value_set(knowledge: Knowledge, value_set_id: str) -> frozenset[Code]:
    return knowledge.value_sets[value_set_id].codes


def rxnorm_codes(codes: Iterable[Code]) -> frozenset[str]:
    """The RxNorm code strings among ``codes`` (e.g. the ingredient RxCUIs of a value set)."""
    return frozenset(code for system, code in codes if system == RXNORM)


def drug_codes(knowledge: Knowledge, value_set_id: str) -> frozenset[str]:
    """The RxNorm codes of a drug value set (ingredient and product RxCUIs)."""
    return knowledge.value_sets[value_set_id].rxnorm_codes


def ingredients_in(
    knowledge: Knowledge, medication: MedicationEntry, wanted: Collection[str]
) -> frozenset[str]:
    """Ingredient RxCUIs of ``medication`` that are among ``wanted``."""
    return knowledge.medications.ingredients(medication.codes) & frozenset(wanted)


def medication_in(
    knowledge: Knowledge, medication: MedicationEntry, codes: frozenset[Code]
) -> bool:
    """Whether a medication is in a value set, by its own codes or by its RxNorm ingredients."""
    if medication.codes & codes:
        return True
    return bool(knowledge.medications.ingredients(medication.codes) & rxnorm_codes(codes))


def members(knowledge: Knowledge, medication: MedicationEntry, value_set_id: str) -> set[str]:
    """What makes ``medication`` a member of a drug value set: its ingredient RxCUIs in the set,
    or else its own product code in the set (a product whose ingredient has no code here,
    such as a ritonavir tablet), as ``product:<rxcui>``, or else an ingredient the set names
    (``rxnorm_names``) occurring as a word in the medication's names, as ``name:<name>``."""
    drugs = knowledge.value_sets[value_set_id]
    found: set[str] = set(ingredients_in(knowledge, medication, drugs.rxnorm_codes))
    if not found:
        found = {f"product:{code}" for system, code in medication.codes & drugs.codes}
    if not found and drugs.rxnorm_names:
        names = [*medication.names, *product_names(knowledge, medication)]
        found = {
            f"name:{name}"
            for name in drugs.rxnorm_names
            if any(re.search(rf"\b{re.escape(name)}\b", n, re.IGNORECASE) for n in names)
        }
    return found


def product_names(knowledge: Knowledge, medication: MedicationEntry) -> Iterator[str]:
    """The RxNorm names this library knows for the medication's product codes."""
    for system, code in medication.codes:
        if system == RXNORM and code in knowledge.medications.product_names:
            yield knowledge.medications.product_names[code]


def member_name(knowledge: Knowledge, value_set_id: str, member: str) -> str:
    """A drug name for a card: the ingredient's name, or the product's name in the value set."""
    if member.startswith("product:"):
        code = member.removeprefix("product:")
        return knowledge.value_sets[value_set_id].display((RXNORM, code)) or f"RxNorm {code}"
    if member.startswith("name:"):
        return member.removeprefix("name:")
    return ingredient_name(knowledge, member)


def ingredient_name(knowledge: Knowledge, rxcui: str) -> str:
    return knowledge.medications.ingredient_names.get(rxcui, f"RxNorm {rxcui}")


def drug_names(knowledge: Knowledge, rxcuis: Iterable[str]) -> str:
    """Ingredient names for a card, sorted and joined ("acetaminophen / oxycodone")."""
    return " / ".join(sorted(ingredient_name(knowledge, rx) for rx in rxcuis))


def ever_recorded_condition(
    record: PatientRecord, codes: Collection[Code], *, as_of: datetime
) -> bool:
    """Whether any Condition with one of ``codes`` was recorded by ``as_of``, active or not.

    Resolved conditions count (a myocardial infarction remains history); refuted and
    entered-in-error ones do not. Conditions dated after ``as_of`` are ignored.
    """
    wanted = set(codes)
    for condition in record.resources("Condition"):
        if not codes_of(condition.get("code")) & wanted:
            continue
        verification = {c for _, c in codes_of(condition.get("verificationStatus"))}
        if verification & _REFUTED:
            continue
        recorded = parse_fhir_datetime(
            condition.get("onsetDateTime") or condition.get("recordedDate")
        )
        if recorded is None or recorded <= as_of:
            return True
    return False


def proposed_medication_request(
    *, patient_id: str, rxnorm_code: str, display: str, dosage_text: str
) -> dict[str, Any]:
    """A draft MedicationRequest (intent proposal), validated against the FHIR R4B model."""
    resource = MedicationRequest.model_validate(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": rxnorm_code, "display": display}],
                "text": display,
            },
            "dosageInstruction": [{"text": dosage_text}],
        }
    )
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)


def proposed_service_request(
    patient_id: str, code: Mapping[str, Any], reason: str
) -> dict[str, Any]:
    """A draft ServiceRequest proposal (a visit or test the clinician may order)."""
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": dict(code),
        "reasonCode": [{"text": reason}],
    }


def delete_draft_suggestion(
    label: str, reference: str | None, *, recommended: bool = True
) -> Suggestion | None:
    """A suggestion whose single action deletes a draft order; None without a resource id."""
    if not reference or "/" not in reference:
        return None
    return Suggestion(
        label=label,
        isRecommended=recommended,
        actions=[Action(type="delete", description=label, resourceId=reference)],
    )


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def format_date(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "undated"


def round_half_up(value: float) -> int:
    """Whole-number rounding as laboratories report (44.5 -> 45), not Python's half-to-even."""
    return math.floor(value + 0.5)


def living_age(record: PatientRecord, as_of: datetime) -> int | None:
    """Completed years of age of a living patient with a known birth date; None otherwise."""
    if record.patient is None or record.deceased:
        return None
    return record.age(as_of.date())


def threshold(thresholds: Mapping[str, Any], name: str) -> Any:
    """A threshold from the artifact; a missing one is an artifact error, reported by name."""
    try:
        return thresholds[name]
    except KeyError:
        raise KeyError(f"rule artifact lacks threshold {name!r}") from None

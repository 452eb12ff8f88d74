"""A statin ordered above the daily dose its FDA label allows with another drug.

The artifact lists each limit: the statin ingredient, the maximum daily dose in mg, and the
value set of the drugs that impose it (simvastatin label section 2.3: 10 mg with verapamil,
diltiazem or dronedarone; 20 mg with amiodarone, amlodipine or ranolazine). Checked both
ways, as drug interactions are (see ``ddi.partners``): a draft statin order against the
patient's active medications and the call's other drafts, and a draft order of a listed drug
against an active statin.

The daily dose is read from the order: the strength in the RxNorm product name (e.g.
"ezetimibe 10 MG / simvastatin 40 MG Oral Tablet" gives 40 mg of simvastatin) times the dose
per administration (tablets, or mg) times the administrations per day. An order that does
not state its dose counts as one tablet, and one without a frequency as once a day; the dose
is then "at least" that, and a card is given only when that minimum is above the limit. A
product whose strength cannot be read gives no card and no claim that the dose is within it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_client.dosage import Dosage
from fhir_client.record import MedicationEntry
from hooks.cards import Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.logic.common import (
    delete_draft_suggestion,
    ingredient_name,
    member_name,
    members,
    product_names,
    threshold,
)
from knowledge.logic.ddi import partners
from knowledge.rule import EvaluationContext, Finding, Knowledge

_NO_DOSAGE = (Dosage(dose=None, dose_unit=None, per_day=None),)
# A mass strength such as "40 MG", not a concentration such as "4 MG/ML".
_MG_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*MG\b(?!\s*/)", re.IGNORECASE)


@dataclass(frozen=True)
class DailyDose:
    mg: float
    at_least: bool

    @property
    def text(self) -> str:
        return f"{'at least ' if self.at_least else ''}{self.mg:g} mg"


@dataclass(frozen=True)
class _Limit:
    statin_rxcui: str
    max_daily_mg: float
    value_set: str
    drugs: tuple[str, ...]


def statin_dose_limit(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    limits = [_limit(entry) for entry in threshold(artifact.thresholds, "dose_limits")]
    findings: list[Finding] = []
    seen: set[tuple[str | None, str | None, str]] = set()
    for order in ctx.draft_orders:
        for partner in partners(ctx, order):
            for limit in limits:
                pairs = [(order, partner.entry, True), (partner.entry, order, False)]
                for statin_entry, other, statin_is_draft in pairs:
                    finding = _check(knowledge, artifact, limit, statin_entry, other)
                    key = (statin_entry.reference, other.reference, limit.value_set)
                    if finding is None or key in seen:
                        continue
                    seen.add(key)
                    findings.append(_with_suggestion(artifact, finding, order, statin_is_draft))
    return findings


def _limit(entry: Mapping[str, Any]) -> _Limit:
    return _Limit(
        statin_rxcui=str(entry["statin_rxcui"]),
        max_daily_mg=float(entry["max_daily_mg"]),
        value_set=str(entry["value_set"]),
        drugs=tuple(entry["drugs"]),
    )


def _check(
    knowledge: Knowledge,
    artifact: RuleArtifact,
    limit: _Limit,
    statin: MedicationEntry,
    other: MedicationEntry,
) -> Finding | None:
    if limit.statin_rxcui not in knowledge.medications.ingredients(statin.codes):
        return None
    statin_name = ingredient_name(knowledge, limit.statin_rxcui)
    imposing = members(knowledge, other, limit.value_set)
    if not imposing:
        return None
    dose = daily_dose(statin, statin_name, product_names(knowledge, statin))
    if dose is None or dose.mg <= limit.max_daily_mg:
        return None
    named = [member_name(knowledge, limit.value_set, m) for m in sorted(imposing)]
    return Finding(
        card="dose_above_limit",
        values={
            "statin": statin_name,
            "daily_dose": dose.text,
            "max_daily_mg": f"{limit.max_daily_mg:g}",
            "other_drug": _drug_named(named, limit.drugs),
            "other_product": "; ".join(named),
            "other_status": "a draft order" if other.status == "draft" else "an active medication",
        },
    )


def _with_suggestion(
    artifact: RuleArtifact, finding: Finding, order: MedicationEntry, statin: bool
) -> Finding:
    """The card offers to remove the draft order of this call (the statin or the other drug)."""
    drug = str(finding.values["statin" if statin else "other_drug"])
    label = artifact.suggestion_labels["remove_draft"].format(drug=drug)
    suggestion = delete_draft_suggestion(label, order.reference)
    suggestions: tuple[Suggestion, ...] = (suggestion,) if suggestion else ()
    return Finding(card=finding.card, values=finding.values, suggestions=suggestions)


def daily_dose(
    entry: MedicationEntry, ingredient: str, product_names: Iterable[str]
) -> DailyDose | None:
    """The largest daily dose of ``ingredient`` any of the order's dosage instructions gives."""
    strength = strength_mg([*product_names, *entry.names], ingredient)
    doses = []
    for dosage in entry.dosages or _NO_DOSAGE:
        if dosage.in_mg and dosage.dose is not None:
            per_administration, dose_stated = dosage.dose, True
        elif dosage.counts_units and strength is not None:
            per_administration = (dosage.dose if dosage.dose is not None else 1) * strength
            dose_stated = dosage.dose is not None
        else:
            continue
        # Every other day is still the full dose on the day it is taken.
        per_day = max(dosage.per_day, 1.0) if dosage.per_day is not None else 1.0
        at_least = not dose_stated or dosage.per_day is None
        doses.append(DailyDose(per_administration * per_day, at_least))
    return max(doses, key=lambda d: d.mg, default=None)


def strength_mg(names: Sequence[str], ingredient: str) -> float | None:
    """The ingredient's mass per unit in an RxNorm-style product name ("simvastatin 40 MG")."""
    pattern = re.compile(rf"\b{re.escape(ingredient)}\b", re.IGNORECASE)
    for name in names:
        for part in name.split(" / "):
            named = pattern.search(part)
            found = _MG_STRENGTH.search(part, named.end()) if named else None
            if found:
                return float(found.group(1))
    return None


def _drug_named(names: Sequence[str], drugs: Sequence[str]) -> str:
    """The listed drug a product is (``amlodipine`` for "amlodipine 5 MG / benazepril ...")."""
    for drug in drugs:
        if any(re.search(rf"\b{re.escape(drug)}\b", n, re.IGNORECASE) for n in names):
            return drug
    return names[0]

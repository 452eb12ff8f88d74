"""What each rule can recognise: per value set, the code systems, codes and sources it holds.

An integrator checks this against the coding their EHR sends (ICD-10-CM problem lists,
the LOINC codes of their laboratory, the RxNorm products they prescribe) before go-live.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_client.codes import RXNORM
from knowledge.library import KnowledgeLibrary
from knowledge.terminology import MedicationIndex, ValueSet


@dataclass(frozen=True)
class ValueSetCoverage:
    rule_id: str
    value_set_id: str
    codes_by_system: dict[str, int]
    published: tuple[str, ...]
    """OIDs of the published expansions the set is built from"""
    local_parts: tuple[str, ...]
    """kinds of the local parts ("built", "extension")"""
    rxnorm_products: int
    """product RxCUIs (SCD, SBD, packs) the medication map resolves to the set's ingredients"""
    matched_by_name: tuple[str, ...] = ()
    """ingredients without a code here, matched by name in RxNorm product names"""


def coverage(library: KnowledgeLibrary) -> list[ValueSetCoverage]:
    """One row per (rule, value set the rule uses), in rule then value-set order."""
    value_sets = library.knowledge.value_sets
    medications = library.knowledge.medications
    rows = []
    for rule in sorted(library.rules, key=lambda r: r.id):
        for value_set_id in rule.artifact.value_sets:
            value_set = value_sets[value_set_id]
            rows.append(
                ValueSetCoverage(
                    rule_id=rule.id,
                    value_set_id=value_set_id,
                    codes_by_system=value_set.codes_by_system(),
                    published=tuple(i.published.oid for i in value_set.includes if i.published),
                    local_parts=tuple(i.local.kind for i in value_set.includes if i.local),
                    rxnorm_products=_products_of(value_set, medications),
                    matched_by_name=tuple(sorted(value_set.rxnorm_names)),
                )
            )
    return rows


def _products_of(value_set: ValueSet, medications: MedicationIndex) -> int:
    """Product codes that count as members: listed ones, and those of listed ingredients."""
    rxnorm = {code for system, code in value_set.codes if system == RXNORM}
    return sum(
        1
        for product, ingredients in medications.product_ingredients.items()
        if product in rxnorm or ingredients & rxnorm
    )

"""Export the knowledge library as FHIR R4 artifacts other systems can read.

Each active rule becomes a PlanDefinition (type eca-rule) with its hooks as named-event
triggers, its citations as relatedArtifacts, and a Library (asset-collection) that
depends on the ValueSets it uses. Every resource is validated with fhir.resources.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.library import Library
from fhir.resources.R4B.plandefinition import PlanDefinition
from fhir.resources.R4B.valueset import ValueSet

from knowledge.artifact import RuleArtifact
from knowledge.terminology import ValueSet as LocalValueSet

DEFAULT_BASE_URL = "https://lhs.example.org/fhir"
_STATUS = {"draft": "draft", "active": "active", "retired": "retired"}


def value_set_resource(
    value_set: LocalValueSet, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    by_system: dict[str, list[dict[str, str]]] = {}
    for system, code in sorted(value_set.codes):
        by_system.setdefault(system, []).append({"code": code})
    resource = {
        "resourceType": "ValueSet",
        "id": value_set.id,
        "url": f"{base_url}/ValueSet/{value_set.id}",
        "name": value_set.id.replace("-", "_"),
        "title": value_set.title,
        "status": "active",
        "description": value_set.description,
        "compose": {
            "include": [
                {"system": system, "concept": concepts} for system, concepts in by_system.items()
            ]
        },
    }
    return ValueSet.model_validate(resource).model_dump(mode="json", exclude_none=True)


def library_resource(artifact: RuleArtifact, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    resource = {
        "resourceType": "Library",
        "id": f"{artifact.id}-value-sets",
        "url": f"{base_url}/Library/{artifact.id}-value-sets",
        "version": artifact.version,
        "name": f"{artifact.id}_value_sets".replace("-", "_"),
        "title": f"Value sets of {artifact.title}",
        "status": _STATUS[artifact.status],
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/library-type",
                    "code": "asset-collection",
                }
            ]
        },
        "relatedArtifact": [
            {"type": "depends-on", "resource": f"{base_url}/ValueSet/{vs}"}
            for vs in artifact.value_sets
        ]
        or None,
    }
    return Library.model_validate({k: v for k, v in resource.items() if v is not None}).model_dump(
        mode="json", exclude_none=True
    )


def plan_definition(artifact: RuleArtifact, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    citations = [
        {
            "type": "citation",
            "label": c.evidence_grade,
            "display": f"{c.title}. {c.publisher}, {c.year}.",
            "url": str(c.url),
        }
        for c in artifact.citations
    ]
    resource = {
        "resourceType": "PlanDefinition",
        "id": artifact.id,
        "url": f"{base_url}/PlanDefinition/{artifact.id}",
        "version": artifact.version,
        "name": artifact.id.replace("-", "_"),
        "title": artifact.title,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                    "code": "eca-rule",
                }
            ]
        },
        "status": _STATUS[artifact.status],
        "author": [{"name": artifact.author}],
        "reviewer": [{"name": artifact.reviewer}],
        "date": max(entry.date for entry in artifact.changelog).isoformat(),
        "relatedArtifact": [{k: v for k, v in c.items() if v is not None} for c in citations],
        "library": [f"{base_url}/Library/{artifact.id}-value-sets"],
        "action": [
            {
                "title": template.summary,
                "description": f"Card '{key}' ({template.indicator}).",
                "trigger": [{"type": "named-event", "name": hook} for hook in artifact.hooks],
                "priority": "stat" if template.indicator == "critical" else "routine",
            }
            for key, template in artifact.cards.items()
        ],
    }
    return PlanDefinition.model_validate(resource).model_dump(mode="json", exclude_none=True)

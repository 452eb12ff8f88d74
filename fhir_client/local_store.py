"""An in-memory FHIR store answering the read and search subset our prefetch templates use.

It serves the synthetic patients to the simulated EHR FHIR server in the tests and builds
prefetch for `lhs sweep`, so both answer a template exactly as a FHIR server would:
reads (``Patient/123``) and type-level searches by patient (``patient=`` or
``subject=``), token codes (``code=a,b`` with optional ``system|``), ``status``,
``clinical-status`` and ``_id``. Result paging is the caller's business.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fhir_client.fhirdates import parse_fhir_datetime
from fhir_client.record import codes_of

_SEARCH_PARAMETERS = frozenset(
    {
        "patient",
        "subject",
        "code",
        "status",
        "clinical-status",
        "_id",
        "_count",
        "_sort",
        "_lastUpdated",
    }
)


class UnsupportedQuery(ValueError):
    """A query this store cannot answer faithfully (it never guesses)."""


def _patient_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    if not isinstance(reference, str):
        return None
    return reference.removeprefix("urn:uuid:").rsplit("/", 1)[-1]


def rewrite_references(value: Any, targets: Mapping[str, str]) -> Any:
    """Replace ``urn:uuid:`` references of a transaction Bundle by relative ``Type/id`` ones."""
    if isinstance(value, dict):
        return {
            k: (
                targets.get(v, v)
                if k == "reference" and isinstance(v, str)
                else rewrite_references(v, targets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [rewrite_references(v, targets) for v in value]
    return value


_DATE_PREFIXES = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b,
}


def _last_updated_matches(resource: Mapping[str, Any], bound: str) -> bool:
    """A ``_lastUpdated`` search bound (``ge2026-01-01T00:00:00+00:00``) against meta.lastUpdated."""
    prefix, value = (bound[:2], bound[2:]) if bound[:2] in _DATE_PREFIXES else ("eq", bound)
    limit = parse_fhir_datetime(value)
    if limit is None:
        raise UnsupportedQuery(f"not a date: {bound!r}")
    updated = parse_fhir_datetime((resource.get("meta") or {}).get("lastUpdated"))
    return updated is not None and _DATE_PREFIXES[prefix](updated, limit)


def _token_matches(concept: object, wanted: list[tuple[str | None, str]]) -> bool:
    codes = codes_of(concept)
    return any(
        (system is None or system == s) and code == c for system, code in wanted for s, c in codes
    )


@dataclass
class LocalFhirStore:
    resources: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    by_patient: dict[tuple[str, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def from_bundles(cls, bundles: Iterable[Mapping[str, Any]]) -> LocalFhirStore:
        store = cls()
        for bundle in bundles:
            entries = [e for e in bundle.get("entry") or () if isinstance(e.get("resource"), dict)]
            targets = {
                e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in entries
                if isinstance(e.get("fullUrl"), str) and "id" in e["resource"]
            }
            for entry in entries:
                store.add(rewrite_references(entry["resource"], targets))
        return store

    def add(self, resource: dict[str, Any]) -> None:
        resource_type, resource_id = resource["resourceType"], str(resource["id"])
        self.resources[resource_type][resource_id] = resource
        if (patient := _patient_of(resource)) is not None:
            self.by_patient[(resource_type, patient)].append(resource)

    def patient_ids(self) -> list[str]:
        return sorted(self.resources.get("Patient", {}))

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_type, {}).get(resource_id)

    def search(self, resource_type: str, params: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        unknown = set(params) - _SEARCH_PARAMETERS
        if unknown:
            raise UnsupportedQuery(f"unsupported search parameters: {sorted(unknown)}")
        patient = (params.get("patient") or params.get("subject") or [None])[0]
        if patient is not None:
            candidates = self.by_patient.get((resource_type, patient.rsplit("/", 1)[-1]), [])
        else:
            candidates = list(self.resources.get(resource_type, {}).values())
        if "_id" in params:
            ids = {i for value in params["_id"] for i in value.split(",")}
            candidates = [r for r in candidates if str(r.get("id")) in ids]
        if "code" in params:
            wanted = [
                (token.split("|", 1)[0] or None, token.split("|", 1)[1])
                if "|" in token
                else (None, token)
                for value in params["code"]
                for token in value.split(",")
            ]
            field_name = "vaccineCode" if resource_type == "Immunization" else "code"
            candidates = [r for r in candidates if _token_matches(r.get(field_name), wanted)]
        if "status" in params:
            statuses = {s for value in params["status"] for s in value.split(",")}
            candidates = [r for r in candidates if r.get("status") in statuses]
        if "clinical-status" in params:
            statuses = {s for value in params["clinical-status"] for s in value.split(",")}
            candidates = [
                r
                for r in candidates
                if {c for _, c in codes_of(r.get("clinicalStatus"))} & statuses
            ]
        for bound in params.get("_lastUpdated", ()):
            candidates = [r for r in candidates if _last_updated_matches(r, bound)]
        return candidates

    def query(self, relative_url: str) -> dict[str, Any] | None:
        """Answer ``Type/id`` with the resource (None if absent) and ``Type?...`` with a Bundle."""
        parts = urlsplit(relative_url)
        path = parts.path.strip("/")
        if "/" in path:
            resource_type, resource_id = path.split("/", 1)
            return self.read(resource_type, resource_id)
        found = self.search(path, parse_qs(parts.query))
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [{"resource": r} for r in found],
        }

"""Outcomes as they happen: FHIR resources reduced to the facts that label predictions and
feed population surveillance.

What arrives (a Bundle of Encounter, Condition, Observation, Procedure and Patient
resources, or a FHIR Subscription notification Bundle) is validated resource by resource with
fhir.resources; a bad entry is named and rejected, the good ones are kept. Only what
learning needs is kept, and no identifier: the patient as a keyed pseudonym, the resource
as a keyed hash of its id (so a re-sent or corrected resource replaces its earlier
version instead of counting twice), its class or codes, dates, status and value; of a
Patient only the birth year and a coarse area (the first three digits of a US ZIP code,
"000" for those with 20,000 people or fewer, as the HIPAA Safe Harbor method allows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from pydantic import ValidationError

from fhir_client.area import coarse_area, home_postal_code
from fhir_client.fhirdates import parse_fhir_datetime
from fhir_client.pseudonym import patient_key
from fhir_client.record import codes_of, patient_id_of

OUTCOME_TYPES = {
    "Encounter": Encounter,
    "Condition": Condition,
    "Observation": Observation,
    "Procedure": Procedure,
    "Patient": Patient,
}
# Subscription notifications (R4 Backport IG: a Parameters entry; R4B: SubscriptionStatus)
# carry the subscription's status, not outcomes: acknowledged, not stored.
_NOTIFICATION_STATUS = frozenset({"Parameters", "SubscriptionStatus"})
_BUNDLE_TYPES = frozenset(
    {"transaction", "batch", "collection", "history", "searchset", "subscription-notification"}
)


@dataclass(frozen=True)
class OutcomeInput:
    resource_key: str
    patient_key: str
    resource_type: str
    status: str
    class_code: str | None
    codes: list[str]
    """``system|code`` of the resource's main code (Encounter: its types)."""
    started_at: datetime | None
    ended_at: datetime | None
    value: float | None
    unit: str | None
    content_hash: str
    value_codes: list[str] = field(default_factory=list)
    """``system|code`` of a coded Observation value (e.g. SNOMED Detected)."""
    area: str | None = None
    """Patient: the coarse area of residence (see ``coarse_area``)."""
    birth_year: int | None = None
    """Patient: the year of birth (age bands need no more)."""
    owner: str = ""
    """The client that fed it in ("" for `lhs sync` and with authentication off)."""


@dataclass
class ParsedOutcomes:
    items: list[OutcomeInput] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    notifications: int = 0
    without_resource: int = 0
    """Entries that only reference a resource (id-only notifications): fetch them with lhs sync."""


class NotABundle(ValueError):
    pass


def _keyed(secret: bytes, fhir_server: str | None, reference: str) -> str:
    message = f"resource\x1f{fhir_server or ''}\x1f{reference}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _dates(resource: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    kind = resource["resourceType"]
    if kind == "Encounter":
        period = resource.get("period") or {}
        return parse_fhir_datetime(period.get("start")), parse_fhir_datetime(period.get("end"))
    if kind == "Condition":
        return (
            parse_fhir_datetime(resource.get("onsetDateTime") or resource.get("recordedDate")),
            parse_fhir_datetime(resource.get("abatementDateTime")),
        )
    if kind == "Patient":
        return None, None
    if kind == "Procedure":
        period = resource.get("performedPeriod") or {}
        start = parse_fhir_datetime(resource.get("performedDateTime") or period.get("start"))
        return start, parse_fhir_datetime(period.get("end"))
    period = resource.get("effectivePeriod") or {}
    start = parse_fhir_datetime(resource.get("effectiveDateTime") or period.get("start"))
    return start, parse_fhir_datetime(period.get("end"))


def _codes(resource: Mapping[str, Any]) -> list[str]:
    if resource["resourceType"] == "Encounter":
        concepts = resource.get("type") or []
    elif resource["resourceType"] == "Patient":
        concepts = []
    else:
        concepts = [resource.get("code")]
    return sorted({f"{s}|{c}" for concept in concepts for s, c in codes_of(concept)})


def _status(resource: Mapping[str, Any]) -> str:
    if resource["resourceType"] == "Condition":
        return ",".join(c for _, c in sorted(codes_of(resource.get("clinicalStatus")))) or ""
    return str(resource.get("status", ""))


def outcome_input(
    resource: Mapping[str, Any], secret: bytes, fhir_server: str | None, owner: str = ""
) -> OutcomeInput:
    """Reduce one validated outcome resource; ValueError if it cannot be linked to a patient."""
    patient_id = patient_id_of(resource)
    if patient_id is None:
        raise ValueError("the resource names no patient (subject or patient reference)")
    if not resource.get("id"):
        raise ValueError("the resource has no id, so a re-send could not be recognised")
    started, ended = _dates(resource)
    klass = resource.get("class")
    quantity = resource.get("valueQuantity") or {}
    value = quantity.get("value")
    is_patient = resource["resourceType"] == "Patient"
    birth = str(resource.get("birthDate") or "")
    return OutcomeInput(
        # Keyed by owner too, so that one client's re-send can never replace another's row
        # (without an owner, the key stays what it was before tenancy).
        resource_key=_keyed(
            secret,
            fhir_server,
            f"{owner}\x1f" * bool(owner) + f"{resource['resourceType']}/{resource['id']}",
        ),
        patient_key=patient_key(secret, fhir_server, patient_id),
        resource_type=str(resource["resourceType"]),
        status=_status(resource),
        class_code=str(klass["code"]) if isinstance(klass, dict) and klass.get("code") else None,
        codes=_codes(resource),
        started_at=started,
        ended_at=ended,
        value=float(value) if isinstance(value, int | float) else None,
        unit=quantity.get("unit") or quantity.get("code"),
        content_hash=hashlib.sha256(
            json.dumps(resource, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
        value_codes=sorted({f"{s}|{c}" for s, c in codes_of(resource.get("valueCodeableConcept"))}),
        area=coarse_area(home_postal_code(resource)) if is_patient else None,
        birth_year=int(birth[:4]) if is_patient and birth[:4].isdigit() else None,
        owner=owner,
    )


def parse_outcomes(
    bundle: object, secret: bytes, fhir_server: str | None, owner: str = ""
) -> ParsedOutcomes:
    """Validate and reduce every entry; errors name the entry and never stop the others."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise NotABundle("the body must be a FHIR Bundle (resourceType 'Bundle')")
    if bundle.get("type") not in _BUNDLE_TYPES:
        raise NotABundle(f"Bundle.type must be one of: {', '.join(sorted(_BUNDLE_TYPES))}")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise NotABundle("Bundle.entry must be a list")
    parsed = ParsedOutcomes()
    for index, entry in enumerate(entries):
        where = f"entry.{index}.resource"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            if isinstance(entry, dict) and entry.get("fullUrl"):
                parsed.without_resource += 1
                continue
            parsed.errors.append({"field": f"entry.{index}", "message": "no resource"})
            continue
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind in _NOTIFICATION_STATUS:
            parsed.notifications += 1
            continue
        model = OUTCOME_TYPES.get(kind)  # type: ignore[arg-type]
        if model is None:
            parsed.errors.append(
                {
                    "field": f"{where}.resourceType",
                    "message": f"{kind!r} is not an outcome type ({', '.join(OUTCOME_TYPES)})",
                }
            )
            continue
        try:
            model.model_validate(resource)
            parsed.items.append(outcome_input(resource, secret, fhir_server, owner))
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False)[0]
            location = ".".join(str(p) for p in first["loc"])
            parsed.errors.append(
                {"field": f"{where}.{location}".rstrip("."), "message": first["msg"]}
            )
        except ValueError as error:
            parsed.errors.append({"field": where, "message": str(error)})
    return parsed

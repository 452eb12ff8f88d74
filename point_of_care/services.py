"""The CDS services we offer: which hook each answers and the prefetch templates it asks for.

Every service runs the active rules of the knowledge library written for its hook. The
Observation prefetch is derived from the LOINC codes in the value sets those rules use,
so a new rule's data needs reach discovery without editing this file. Templates use only
the query subset the spec recommends (reads, and type-level searches with token
parameters), so any conformant EHR can satisfy them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_client.codes import LOINC
from fhir_client.record import Code

_PATIENT_SEARCH = "patient={{context.patientId}}"

PREFETCH_QUERIES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "conditions": f"Condition?{_PATIENT_SEARCH}",
    "medications": f"MedicationRequest?{_PATIENT_SEARCH}&status=active",
    "allergies": f"AllergyIntolerance?{_PATIENT_SEARCH}",
    "immunizations": f"Immunization?{_PATIENT_SEARCH}",
    "procedures": f"Procedure?{_PATIENT_SEARCH}",
    "encounters": f"Encounter?{_PATIENT_SEARCH}",
}

# Blood pressure values are components of a panel (85354-9; 55284-4 in older records);
# searching by the component code alone would miss them on most servers.
_PANELS_OF_COMPONENT: dict[str, tuple[str, ...]] = {
    "8480-6": ("85354-9", "55284-4"),
    "8462-4": ("85354-9", "55284-4"),
}


@dataclass(frozen=True)
class ServiceSpec:
    """What we promise about a service; its prefetch is completed from its rules' needs."""

    id: str
    hook: str
    title: str
    description: str
    resources: tuple[str, ...]
    """Keys of PREFETCH_QUERIES this service asks for (plus `observations` when its rules need any)."""


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    usage_requirements: str | None = None


USAGE_REQUIREMENTS = (
    "Needs the prefetch data listed, or fhirServer with fhirAuthorization granting read access "
    "to them; without either the service answers 412."
)

SERVICE_SPECS: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        id="lhs-patient-view",
        hook="patient-view",
        title="Preventive care and risk review",
        description="Evidence-based care gaps and risks when a patient's chart is opened, e.g. "
        "statins for primary prevention from the Pooled Cohort Equations (USPSTF 2022).",
        resources=("patient", "conditions", "medications", "immunizations", "procedures"),
    ),
    ServiceSpec(
        id="lhs-order-select",
        hook="order-select",
        title="Medication order safety (on selection)",
        description="Checks newly selected medication orders against the patient's medications, "
        "allergies and conditions, e.g. high-priority drug-drug interactions (ONC list, Phansalkar 2012).",
        resources=("patient", "conditions", "medications", "allergies"),
    ),
    ServiceSpec(
        id="lhs-order-sign",
        hook="order-sign",
        title="Medication order safety (before signing)",
        description="Checks draft medication orders before signature, e.g. renal contraindications "
        "(metformin with eGFR < 30 by CKD-EPI 2021) and high-priority drug-drug interactions.",
        resources=("patient", "conditions", "medications", "allergies"),
    ),
    ServiceSpec(
        id="lhs-encounter-discharge",
        hook="encounter-discharge",
        title="Discharge planning",
        description="Readmission risk and transitional care at discharge, e.g. the LACE index "
        "(van Walraven 2010).",
        resources=("patient", "encounter", "encounters", "conditions", "medications"),
    ),
)


def observations_query(codes: Iterable[Code]) -> str | None:
    """An Observation search for these LOINC codes (and the panels that carry components)."""
    # LOINC answer codes (LA...) are values of observations, never what one is searched by.
    loinc = {code for system, code in codes if system == LOINC and not code.startswith("LA")}
    loinc |= {panel for code in loinc for panel in _PANELS_OF_COMPONENT.get(code, ())}
    if not loinc:
        return None
    return f"Observation?{_PATIENT_SEARCH}&code=" + ",".join(f"{LOINC}|{c}" for c in sorted(loinc))


def service_definition(spec: ServiceSpec, observation_codes: Iterable[Code]) -> ServiceDefinition:
    prefetch = {key: PREFETCH_QUERIES[key] for key in spec.resources}
    if (query := observations_query(observation_codes)) is not None:
        prefetch["observations"] = query
    return ServiceDefinition(
        id=spec.id,
        hook=spec.hook,
        title=spec.title,
        description=spec.description,
        prefetch=prefetch,
        usage_requirements=USAGE_REQUIREMENTS,
    )

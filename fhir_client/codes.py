"""Code system URIs used across the service (FHIR R4 canonical URLs), and coding normalisation.

Real EHRs name code systems in more than one way (the FHIR canonical URL, the HL7 OID as
``urn:oid:...``, a trailing slash) and send ICD-10-CM codes with or without the dot
("I48.0" or "I480"). Every coding is normalised once, when it is read, so value sets and
records meet on one spelling.
"""

from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
UCUM = "http://unitsofmeasure.org"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
OMB_RACE = "urn:oid:2.16.840.1.113883.6.238"

SYSTEM_NAMES: dict[str, str] = {
    LOINC: "LOINC",
    SNOMED: "SNOMED CT",
    RXNORM: "RxNorm",
    ICD10CM: "ICD-10-CM",
    ICD9CM: "ICD-9-CM",
    ICD10PCS: "ICD-10-PCS",
    CVX: "CVX",
}

# HL7 OIDs of the same code systems (HL7 OID registry), as some EHRs send them, and the
# terminology.hl7.org URL that VSAC expansions use for ICD-9-CM.
_SYSTEM_ALIASES: dict[str, str] = {
    "http://terminology.hl7.org/CodeSystem/icd9cm": ICD9CM,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.103": ICD9CM,
    "urn:oid:2.16.840.1.113883.12.292": CVX,
}


def normalize_system(system: str) -> str:
    """The canonical URL of a code system given as a URL, an OID URN or with a trailing slash."""
    system = system.strip().rstrip("/")
    return _SYSTEM_ALIASES.get(system, system)


def normalize_code(system: str, code: str) -> str:
    """One spelling per code: ICD-10-CM upper case with the dot after the category ("I48.0")."""
    code = code.strip()
    if system == ICD10CM:
        code = code.upper()
        if len(code) > 3 and "." not in code:
            code = f"{code[:3]}.{code[3:]}"
    return code


def icd10cm_ancestors(code: str) -> list[str]:
    """The categories a normalised ICD-10-CM code falls under: "I50.22" -> ["I50", "I50.2"].

    ICD-10-CM codes are hierarchical by prefix, and a category stands for every code under it,
    so a value set may list "I50" (as the Charlson coding algorithms do) and still match a
    record's "I50.22".
    """
    category, _, rest = code.partition(".")
    return [category, *(f"{category}.{rest[:n]}" for n in range(1, len(rest)))] if rest else []

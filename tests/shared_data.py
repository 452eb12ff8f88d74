"""The synthetic patients and the CDS Hooks spec's examples the tests read: the full set at
../shared when a checkout has it beside it, else the sample the repository carries."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from cds_service.config import REPOSITORY, default_patients
from fhir_client.bundles import load_bundle as read_bundle
from fhir_client.bundles import patient_bundles

SYNTHEA = default_patients()
CDS_HOOKS_EXAMPLES = next(
    folder
    for folder in (
        REPOSITORY.parent / "shared" / "cds-hooks",
        REPOSITORY / "sample_data" / "cds-hooks",
    )
    if folder.is_dir()
)


def patient_files() -> list[Path]:
    return list(patient_bundles(SYNTHEA))


# Many tests read the same patients: each is parsed once per session.
load_bundle = cache(read_bundle)


def patient_id(bundle: dict[str, Any]) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def example(name: str) -> dict[str, Any]:
    return json.loads((CDS_HOOKS_EXAMPLES / name).read_text(encoding="utf-8"))

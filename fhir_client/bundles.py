"""FHIR Bundles on disk: one patient's record per file, as Synthea writes them (gzip or not)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fhir_client.record import PatientRecord


def load_bundle(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def patient_bundles(folder: Path) -> Iterator[Path]:
    """Patient Bundles in a Synthea output folder (the organisation/practitioner files excluded)."""
    for path in sorted(folder.glob("*.json*")):
        if not path.name.startswith(("hospitalInformation", "practitionerInformation")):
            yield path


def bundle_patient_records(paths: Iterable[Path]) -> Iterator[PatientRecord]:
    """The record of the patient of each Bundle (Bundles without a Patient are skipped)."""
    for path in paths:
        resources = [entry["resource"] for entry in load_bundle(path).get("entry", ())]
        patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
        if patient is not None:
            yield PatientRecord.from_resources(str(patient["id"]), resources)

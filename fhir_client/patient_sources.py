"""Where patient records for training come from: a folder of patient Bundles (one patient's
whole record per file, as Synthea writes them) or a folder of Bulk Data NDJSON (one file per
resource type, as a FHIR server's ``$export`` writes them). Both give the same records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fhir_client.bulk_patients import bulk_patient_records
from fhir_client.bundles import bundle_patient_records, patient_bundles
from fhir_client.ndjson import is_bulk_folder
from fhir_client.record import PatientRecord


def patient_records(folder: Path) -> Iterator[PatientRecord]:
    """Each patient's record from a folder of Bundles or of Bulk Data NDJSON, one at a time."""
    if is_bulk_folder(folder):
        return bulk_patient_records(folder)
    return bundle_patient_records(patient_bundles(folder))

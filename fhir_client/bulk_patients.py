"""Patient records from a folder of Bulk Data NDJSON, streamed with bounded memory.

A Bulk Data export writes one file per resource type, so one patient's resources are spread
over every file. They are brought together the way a database would sort a table too large
for memory: one pass over the files writes each line to one of several spill files in a
temporary folder, chosen by a hash of the patient it belongs to (its ``subject`` or
``patient`` reference, or a Patient's own id); then each spill file, a fraction of the
export, is read alone and grouped. Only one spill file's resources are in memory at a time.
Resources of no patient (Organization, Practitioner, Medication ...) are skipped.
"""

from __future__ import annotations

import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_client.ndjson import ndjson_files, parse_line, read_lines
from fhir_client.record import PatientRecord, patient_id_of

SPILL_BYTES = 64 * 1024 * 1024
"""About how much of the export one spill file holds (and so memory holds at a time)."""
MAX_SPILL_FILES = 512


@dataclass
class GroupingCounts:
    """What the pass read: counts only, never ids."""

    resources: int = 0
    without_patient: int = 0
    unreadable: int = 0
    patients: int = 0
    without_patient_resource: int = 0
    """Groups of resources whose Patient resource was not in the export (skipped)."""


def _spill_files(folder: Path) -> int:
    size = sum(path.stat().st_size for path in ndjson_files(folder))
    return max(1, min(MAX_SPILL_FILES, size // SPILL_BYTES + 1))


def bucket_of(patient_id: str, buckets: int) -> int:
    """The spill file of a patient: the same in every process (unlike ``hash``)."""
    return zlib.crc32(patient_id.encode()) % buckets


def patient_resources(
    folder: Path, counts: GroupingCounts | None = None
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(patient id, every resource of the patient) for each patient in the export, patients
    of one spill file at a time, in id order within it."""
    counts = counts if counts is not None else GroupingCounts()
    buckets = _spill_files(folder)
    with tempfile.TemporaryDirectory(prefix="lhs-bulk-") as scratch:
        spills = [Path(scratch) / f"{i:03d}.ndjson" for i in range(buckets)]
        with ExitStack() as stack:
            handles = [stack.enter_context(path.open("wb")) for path in spills]
            for path in ndjson_files(folder):
                for line in read_lines(path):
                    counts.resources += 1
                    resource = parse_line(line)
                    if resource is None:
                        counts.unreadable += 1
                        continue
                    patient = patient_id_of(resource)
                    if patient is None:
                        counts.without_patient += 1
                        continue
                    handles[bucket_of(patient, buckets)].write(line + b"\n")
        for spill in spills:
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for line in read_lines(spill):
                resource = parse_line(line)
                grouped[patient_id_of(resource)].append(resource)  # type: ignore[arg-type]
            for patient in sorted(grouped):
                resources = grouped.pop(patient)
                if not any(r["resourceType"] == "Patient" for r in resources):
                    counts.without_patient_resource += 1
                    continue
                counts.patients += 1
                yield patient, resources


def bulk_patient_records(
    folder: Path, counts: GroupingCounts | None = None
) -> Iterator[PatientRecord]:
    """Each patient's record from a Bulk Data export folder, one at a time."""
    for patient, resources in patient_resources(folder, counts):
        yield PatientRecord.from_resources(patient, resources)

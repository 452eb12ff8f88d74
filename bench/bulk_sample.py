"""A Bulk Data export made of the synthetic patients, as large as asked
(``python -m bench.bulk_sample FOLDER [--resources N]``).

The patients' Bundles are written as NDJSON, one file per resource type (split every
LINES_PER_FILE lines, ``Observation.000.ndjson``, ``Observation.001.ndjson`` ...), with
references made relative (``Patient/123``) as a FHIR server's ``$export`` writes them. To
reach the size asked, the patients are copied: copy k > 0 of a patient has every id and
reference suffixed with ``-k``, so it is another patient with the same history. Copy 0 keeps
the ids, so its records are exactly those of the Bundles.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from cds_service.config import default_patients
from fhir_client.bundles import load_bundle, patient_bundles
from fhir_client.local_store import rewrite_references

LINES_PER_FILE = 100_000


def _reidentified(bundle: dict[str, Any], copy: int) -> Iterator[dict[str, Any]]:
    suffix = f"-{copy}" if copy else ""
    entries = [e for e in bundle.get("entry") or () if "id" in (e.get("resource") or {})]
    targets = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}{suffix}"
        for e in entries
        if isinstance(e.get("fullUrl"), str)
    }
    for entry in entries:
        resource = rewrite_references(entry["resource"], targets)
        yield {**resource, "id": f"{resource['id']}{suffix}"}


@dataclass
class _Writer:
    folder: Path
    stack: ExitStack
    lines: dict[str, int] = field(default_factory=dict)
    handles: dict[str, IO[bytes]] = field(default_factory=dict)

    def write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        written = self.lines.get(kind, 0)
        if written % LINES_PER_FILE == 0:
            if kind in self.handles:
                self.handles[kind].close()
            name = f"{kind}.{written // LINES_PER_FILE:03d}.ndjson"
            self.handles[kind] = self.stack.enter_context((self.folder / name).open("wb"))
        self.handles[kind].write(orjson.dumps(resource) + b"\n")
        self.lines[kind] = written + 1


def write_bulk_export(bundles: Iterable[Path], folder: Path, resources: int | None = None) -> int:
    """Write the patients of ``bundles`` as a Bulk Data export into ``folder``: each patient
    once (``resources`` None), or whole patients, copied as needed, until at least
    ``resources`` resources are written. Returns how many were written."""
    paths = list(bundles)
    folder.mkdir(parents=True, exist_ok=True)
    written, copy = 0, 0
    with ExitStack() as stack:
        writer = _Writer(folder, stack)
        while written < (resources or 1):
            for path in paths:
                for resource in _reidentified(load_bundle(path), copy):
                    writer.write(resource)
                    written += 1
                if resources is not None and written >= resources:
                    return written
            if resources is None:
                return written
            copy += 1
    return written


SNOMED = "http://snomed.info/sct"
CASE_CONDITIONS = ("840539006", "6142004", "95891005", "25374005")
"""COVID-19, influenza, influenza-like illness, gastroenteritis (knowledge/data/syndromes)."""
SARS_COV_2_RNA = "94500-6"
RESULTS = ("260373001", "260415000")
"""Detected, not detected."""


def write_case_reports(
    folder: Path, reports: int, first_day: date, days: int, seed: int = 7
) -> int:
    """Add ``reports`` Conditions and SARS-CoV-2 test Observations, a third of them cases of a
    syndrome, for the export's patients on days from ``first_day``: a feed surveillance can
    count. Returns how many were written."""
    rng = random.Random(seed)
    patients = [
        orjson.loads(line)["id"]
        for path in sorted(folder.glob("Patient.*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]
    with (
        (folder / "Condition.900.ndjson").open("wb") as conditions,
        (folder / "Observation.900.ndjson").open("wb") as observations,
    ):
        for i in range(reports):
            day = first_day + timedelta(days=rng.randrange(days))
            when = f"{day.isoformat()}T{rng.randrange(24):02d}:30:00-05:00"
            subject = {"reference": f"Patient/{rng.choice(patients)}"}
            if rng.random() < 0.5:
                code = rng.choice(CASE_CONDITIONS) if rng.random() < 0.3 else "444814009"
                resource = {
                    "resourceType": "Condition",
                    "id": f"case-report-{i}",
                    "subject": subject,
                    "code": {"coding": [{"system": SNOMED, "code": code}]},
                    "onsetDateTime": when,
                }
                conditions.write(orjson.dumps(resource) + b"\n")
            else:
                resource = {
                    "resourceType": "Observation",
                    "id": f"case-report-{i}",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://loinc.org", "code": SARS_COV_2_RNA}]},
                    "effectiveDateTime": when,
                    "valueCodeableConcept": {
                        "coding": [{"system": SNOMED, "code": rng.choice(RESULTS)}]
                    },
                }
                observations.write(orjson.dumps(resource) + b"\n")
    return reports


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="Where to write the NDJSON files.")
    parser.add_argument(
        "--resources", type=int, help="Copy patients until this many (default: each once)."
    )
    parser.add_argument(
        "--case-reports", type=int, default=3_000, help="Conditions and tests added over 90 days."
    )
    args = parser.parse_args(argv)
    written = write_bulk_export(patient_bundles(default_patients()), args.folder, args.resources)
    written += write_case_reports(args.folder, args.case_reports, date(2026, 1, 1), 90)
    print(f"{written:,} resources written to {args.folder}")


if __name__ == "__main__":
    main()

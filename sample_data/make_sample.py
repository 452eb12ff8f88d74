"""Rebuild sample_data/synthea from the full set of SMART/Synthea patients (../shared).

    python sample_data/make_sample.py ../shared/fhir/synthea

The sample holds: the patients the test suite names (worked cases for rules), then every
patient with an inpatient stay (the discharges the readmission model learns from), smallest
files first, while the folder stays under the size budget; and the two Bundles of the
Organizations and Practitioners the patients reference. The files are copied unchanged.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

BUDGET_BYTES = 9_500_000
NAMED_IN_TESTS = (
    "303201ngela_Guzm",
    "Abdul_Koepp",
    "Adalberto_Hartmann",
    "Addie_Tremblay",
    "Alexis_Toy_68cd1181",
    "Alix_Reilly_b5598b1a",
    "Angelique_Ritchie",
    "Annetta_Hoppe",
    "Austin_Spencer",
    "Barrett_Cummings",
    "Brant_Jacobson",
    "Buddy_MacGyver_c96ab841",
    "Carin_Schowalter_a57d5ea7",
    "Catina_Sawayn_282fcdae",
    "Chung_Haley_e792af79",
    "Clarine_OKeefe",
    "Emery_Purdy_298c62e6",
    "Isaiah_Schaden",
    "Juan_Stracke",
    "Leonardo_Heaney_3a01d46f",
    "Leonel_Hand",
    "Leonor_Trujillo",
)


def inpatient_stays(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        bundle = json.load(handle)
    return sum(
        1
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Encounter"
        and entry["resource"].get("class", {}).get("code") == "IMP"
    )


def main(source: Path, target: Path) -> None:
    files = sorted(source.glob("*.json.gz"))
    shared = [p for p in files if p.name.startswith(("hospital", "practitioner"))]
    patients = [p for p in files if p not in shared]
    chosen = [p for p in patients if p.name.startswith(NAMED_IN_TESTS)]
    size = sum(p.stat().st_size for p in shared + chosen)
    for path in sorted(patients, key=lambda p: (p.stat().st_size, p.name)):
        if path in chosen or not inpatient_stays(path):
            continue
        if size + path.stat().st_size > BUDGET_BYTES:
            break
        chosen.append(path)
        size += path.stat().st_size
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.json.gz"):
        old.unlink()
    for path in shared + chosen:
        shutil.copy2(path, target / path.name)
    print(f"{len(chosen)} patients, {size / 1e6:.1f} MB in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent / "synthea")

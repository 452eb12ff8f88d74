"""FHIR Bundles on disk: one patient's record per file, as Synthea writes them (gzip or not)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def load_bundle(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def patient_bundles(folder: Path) -> Iterator[Path]:
    """Patient Bundles in a Synthea output folder (the organisation/practitioner files excluded)."""
    for path in sorted(folder.glob("*.json*")):
        if not path.name.startswith(("hospitalInformation", "practitionerInformation")):
            yield path

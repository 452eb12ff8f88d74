"""Locating and reading ../shared (synthetic patients and the CDS Hooks spec's examples)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_client.bundles import load_bundle as read_bundle
from fhir_client.bundles import patient_bundles

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SYNTHEA = SHARED / "fhir" / "synthea"
CDS_HOOKS_EXAMPLES = SHARED / "cds-hooks"


def require_shared() -> None:
    """Skip when ../shared is absent outside CI; in CI its absence is a failure."""
    if not SYNTHEA.is_dir():
        message = f"shared test material not found at {SHARED}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def patient_files() -> list[Path]:
    require_shared()
    return list(patient_bundles(SYNTHEA))


# Many tests read the same patients: each is parsed once per session.
load_bundle = cache(read_bundle)


def patient_id(bundle: dict[str, Any]) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def example(name: str) -> dict[str, Any]:
    require_shared()
    return json.loads((CDS_HOOKS_EXAMPLES / name).read_text(encoding="utf-8"))

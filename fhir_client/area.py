"""Where a patient lives, only as coarsely as de-identification allows: the HIPAA Safe Harbor
ZIP3 (45 CFR 164.514(b)(2)(i)(B)). Used for population counts and to match a patient with
the outbreak signals of their area."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The first three digits of a ZIP code may be kept where the area they cover holds more than
# 20,000 people; these ZIP3s (2000 Census, as listed in HHS, "Guidance Regarding Methods for
# De-identification of Protected Health Information", 2012, section 3.4,
# https://www.hhs.gov/hipaa/for-professionals/privacy/special-topics/de-identification/index.html)
# become "000".
SMALL_ZIP3 = frozenset(
    {"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878"}
    | {"879", "884", "890", "893"}
)


def coarse_area(postal_code: str | None) -> str | None:
    """The area of a US ZIP code as Safe Harbor allows: its first three digits, or "000"."""
    digits = (postal_code or "").strip()[:3]
    if len(digits) != 3 or not digits.isdigit():
        return None
    return "000" if digits in SMALL_ZIP3 else digits


def home_postal_code(patient: Mapping[str, Any]) -> str | None:
    """The postal code of the patient's current home address (else any current, else any)."""
    addresses = [a for a in patient.get("address") or [] if isinstance(a, dict)]
    current = [a for a in addresses if not (a.get("period") or {}).get("end")]
    home = [a for a in current if a.get("use") == "home"] or current or addresses
    return home[0].get("postalCode") if home else None

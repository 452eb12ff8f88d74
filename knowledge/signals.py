"""Outbreak signals as rules see them: population context for a point-of-care card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ActiveSignal:
    """An exceedance detected in an area (no counts: they could identify people)."""

    syndrome: str
    area: str
    day: date
    method: str

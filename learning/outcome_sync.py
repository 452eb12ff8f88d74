"""``lhs sync``: pull outcome resources changed in a time window from the EHR's FHIR server.

The pull complements the outcomes endpoint (push): for each outcome type one search by
``_lastUpdated`` in [since, until), all pages followed, then the same validation and
idempotent storage as a pushed Bundle. Running it twice over a window stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from fhir_client.client import FhirClient
from fhir_client.outcomes import OUTCOME_TYPES, parse_outcomes
from storage.repository import OutcomeCounts, Store


@dataclass(frozen=True)
class SyncResult:
    counts: OutcomeCounts
    errors: list[dict[str, str]]
    fetched: dict[str, int]


def _instant(moment: datetime) -> str:
    return quote(moment.isoformat(timespec="seconds"), safe="")


async def sync_outcomes(
    client: FhirClient,
    store: Store,
    secret: bytes,
    fhir_server: str,
    since: datetime,
    until: datetime,
) -> SyncResult:
    entries: list[dict] = []
    fetched: dict[str, int] = {}
    for resource_type in OUTCOME_TYPES:
        bundle = await client.get(
            f"{resource_type}?_lastUpdated=ge{_instant(since)}&_lastUpdated=lt{_instant(until)}"
        )
        found = (bundle or {}).get("entry") or []
        fetched[resource_type] = len(found)
        entries.extend(found)
    parsed = parse_outcomes(
        {"resourceType": "Bundle", "type": "collection", "entry": entries}, secret, fhir_server
    )
    counts = store.record_outcomes(parsed.items)
    return SyncResult(counts, parsed.errors, fetched)

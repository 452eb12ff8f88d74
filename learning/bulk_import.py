"""``lhs bulk import``: the outcome resources of a Bulk Data export into the feed.

The export's Patient, Encounter, Condition, Observation and Procedure files are read a
batch of lines at a time and go through the same validation, reduction to pseudonymous
facts and idempotent storage as a pushed Bundle or ``lhs sync``: importing the same export
twice stores nothing twice, and a changed resource replaces its earlier version. The feed
is what labelling and surveillance read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_client.ndjson import ndjson_files, parse_line, read_lines, resource_type_of_file
from fhir_client.outcomes import OUTCOME_TYPES, parse_outcomes
from storage.repository import Store

BATCH = 5_000
"""Resources validated and stored together."""
ERRORS_KEPT = 20


@dataclass
class ImportResult:
    read: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    """The first rejections, as ``file line N: reason`` (no identifiers)."""


def _batches(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(number of the first line, entries) of the file, a batch at a time."""
    batch: list[Any] = []
    first = 1
    for number, line in enumerate(read_lines(path), start=1):
        batch.append({"resource": parse_line(line)})
        if len(batch) == BATCH:
            yield first, batch
            first, batch = number + 1, []
    if batch:
        yield first, batch


def import_bulk(store: Store, folder: Path, secret: bytes, fhir_server: str) -> ImportResult:
    """Store the outcome resources of the export in ``folder``."""
    result = ImportResult()
    for path in ndjson_files(folder, OUTCOME_TYPES):
        for first, entries in _batches(path):
            result.read[resource_type_of_file(path)] += len(entries)
            parsed = parse_outcomes(
                {"resourceType": "Bundle", "type": "collection", "entry": entries},
                secret,
                fhir_server,
            )
            counts = store.record_outcomes(parsed.items)
            result.stored += counts.stored
            result.updated += counts.updated
            result.duplicates += counts.duplicates
            result.rejected += len(parsed.errors)
            for error in parsed.errors[: max(0, ERRORS_KEPT - len(result.errors))]:
                index, _, where = error["field"].removeprefix("entry.").partition(".")
                where = where.removeprefix("resource").lstrip(".")
                line = first + int(index) if index.isdigit() else first
                result.errors.append(
                    f"{path.name} line {line}{' ' + where if where else ''}: {error['message']}"
                )
    return result

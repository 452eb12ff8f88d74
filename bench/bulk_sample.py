"""A Bulk Data export made of the synthetic patients, as large as asked.

The patients' Bundles are written as NDJSON, one file per resource type (split every
LINES_PER_FILE lines, ``Observation.000.ndjson``, ``Observation.001.ndjson`` ...), with
references made relative (``Patient/123``) as a FHIR server's ``$export`` writes them. To
reach the size asked, the patients are copied: copy k > 0 of a patient has every id and
reference suffixed with ``-k``, so it is another patient with the same history. Copy 0 keeps
the ids, so its records are exactly those of the Bundles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from fhir_client.bundles import load_bundle
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

"""FHIR Bulk Data files on disk: newline-delimited JSON, one resource per line, one resource
type per file, as a Bulk Data ``$export`` writes them (``Patient.ndjson``,
``Encounter.000.ndjson``, ``Observation.001.ndjson.gz`` ...).

The resource type is the file name up to its first dot. Files are read a line at a time, so
a file of any size is never held in memory.
"""

from __future__ import annotations

import gzip
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")


def is_ndjson(path: Path) -> bool:
    return path.name.endswith(NDJSON_SUFFIXES)


def resource_type_of_file(path: Path) -> str:
    """``Encounter`` for ``Encounter.000.ndjson``."""
    return path.name.split(".", 1)[0]


def ndjson_files(folder: Path, types: Collection[str] | None = None) -> list[Path]:
    """The NDJSON files of a folder (of the given resource types only, if given), by name."""
    return [
        path
        for path in sorted(folder.iterdir())
        if path.is_file()
        and is_ndjson(path)
        and (types is None or resource_type_of_file(path) in types)
    ]


def is_bulk_folder(folder: Path) -> bool:
    """Whether a folder holds Bulk Data NDJSON files (rather than patient Bundles)."""
    return folder.is_dir() and any(is_ndjson(path) for path in folder.iterdir())


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def read_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of an NDJSON file, as bytes, one at a time."""
    with _open(path) as handle:
        for line in handle:
            if line.strip():
                yield line.rstrip(b"\r\n")


def read_resources(path: Path) -> Iterator[dict[str, Any]]:
    """The resources of an NDJSON file, one at a time (ValueError names a line that is not a
    JSON object)."""
    for number, line in enumerate(read_lines(path), start=1):
        resource = parse_line(line)
        if resource is None:
            raise ValueError(f"{path.name} line {number}: not a FHIR resource")
        yield resource


def parse_line(line: bytes | str) -> dict[str, Any] | None:
    """One NDJSON line as a resource, or None when it is not a JSON object with a type."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return None
    return value

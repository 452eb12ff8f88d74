"""Taking published value-set expansions (VSAC / eCQM FHIR ValueSets) into the library.

A value set file in knowledge/data/value_sets names, for each part of the set, the published
expansion it was copied from (OID, version, expansion, source) or, for local parts, how the
codes were chosen. ``refresh`` re-reads every published part from a folder of FHIR ValueSet
JSON files named ``<OID>.json`` (such as ../shared/terminology), so a new VSAC release is
taken in by one command and reviewed as a diff. CPT and HCPCS codes are never copied: they
are licensed by the AMA and CMS, and a CDS service matches diagnoses, results and drugs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.terminology import (
    ExcludedCode,
    PublishedSource,
    ValueSetCode,
    ValueSetFile,
    ValueSetInclude,
    read_value_set_file,
)

_EXCLUDED_SYSTEMS = frozenset(
    {
        "http://www.ama-assn.org/go/cpt",
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    }
)


def published_include(
    resource: Mapping[str, Any], excluded: Sequence[ExcludedCode] = ()
) -> ValueSetInclude:
    """The codes of a FHIR ValueSet's expansion with the facts that identify the publication,
    less the ``excluded`` codes (each with its reason)."""
    expansion = resource.get("expansion")
    if not isinstance(expansion, Mapping) or not expansion.get("contains"):
        raise ValueError(f"ValueSet {resource.get('id')} has no expansion to copy")
    contains = expansion["contains"]
    total = expansion.get("total")
    if isinstance(total, int) and total > len(contains):
        raise ValueError(f"ValueSet {resource.get('id')} holds a partial (paged) expansion")
    seen: set[tuple[str, str]] = {(e.system, e.code) for e in excluded}
    codes = []
    for item in sorted(contains, key=lambda c: (c["system"], c["code"])):
        key = (item["system"], item["code"])
        if item["system"] in _EXCLUDED_SYSTEMS or key in seen:
            continue
        seen.add(key)
        codes.append(ValueSetCode(system=key[0], code=key[1], display=item.get("display")))
    source = (resource.get("meta") or {}).get("source") or resource.get("url")
    return ValueSetInclude(
        published=PublishedSource(
            oid=str(resource["id"]),
            title=str(resource.get("title") or resource.get("name") or resource["id"]),
            version=str(resource.get("version") or "-"),
            expansion=str(expansion.get("timestamp") or expansion.get("identifier") or "-"),
            url=str(resource["url"]),
            source=str(source),
        ),
        excluded=list(excluded),
        codes=codes,
    )


def read_published(path: Path, excluded: Sequence[ExcludedCode] = ()) -> ValueSetInclude:
    return published_include(json.loads(path.read_text(encoding="utf-8")), excluded)


def dump_value_set_file(data: ValueSetFile) -> str:
    """YAML with one code per line (a JSON flow mapping), so a refresh reviews as a short diff."""
    lines = [
        yaml.safe_dump({"id": data.id, "title": data.title}, sort_keys=False, width=100).rstrip(),
        yaml.safe_dump({"purpose": data.purpose}, sort_keys=False, width=100).rstrip(),
        "includes:",
    ]
    for include in data.includes:
        header = include.model_dump(mode="json", exclude={"codes"}, exclude_none=True)
        for empty in ("excluded", "rxnorm_names"):
            if not header.get(empty):
                header.pop(empty, None)
        block = yaml.safe_dump(header, sort_keys=False, width=96, allow_unicode=True).rstrip()
        indented = block.splitlines()
        lines.append("  - " + indented[0])
        lines.extend("    " + line for line in indented[1:])
        if include.codes:
            lines.append("    codes:")
        for code in include.codes:
            entry = code.model_dump(exclude_none=True)
            lines.append("      - " + json.dumps(entry, ensure_ascii=False))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RefreshChange:
    value_set: str
    oid: str
    old_version: str
    new_version: str
    added: int
    removed: int


def refresh(folder: Path, terminology: Path) -> list[RefreshChange]:
    """Re-read every published part of every value set in ``folder`` from ``terminology``.

    Parts whose OID has no file there are left as they are; local parts are never touched.
    """
    changes: list[RefreshChange] = []
    for path in sorted(folder.glob("*.yaml")):
        data = read_value_set_file(path)
        includes = []
        for include in data.includes:
            source = terminology / f"{include.published.oid}.json" if include.published else None
            if source is None or not source.is_file():
                includes.append(include)
                continue
            fresh = read_published(source, include.excluded)
            old = {(c.system, c.code) for c in include.codes}
            new = {(c.system, c.code) for c in fresh.codes}
            assert include.published is not None and fresh.published is not None
            if fresh != include:
                changes.append(
                    RefreshChange(
                        data.id,
                        include.published.oid,
                        include.published.version,
                        fresh.published.version,
                        len(new - old),
                        len(old - new),
                    )
                )
            includes.append(fresh)
        updated = data.model_copy(update={"includes": includes})
        if updated != data:
            path.write_text(dump_value_set_file(updated), encoding="utf-8")
    return changes

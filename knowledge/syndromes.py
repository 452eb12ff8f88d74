"""Syndromes and conditions under population surveillance, as data: which recorded
diagnoses, and which laboratory tests with which results, count as a case."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field

from knowledge.artifact import StrictModel
from knowledge.terminology import ValueSetCode


def code_keys(codes: list[ValueSetCode]) -> frozenset[str]:
    """``system|code`` strings, as the feed stores codes."""
    return frozenset(f"{c.system}|{c.code}" for c in codes)


class Syndrome(StrictModel):
    """A case is a Condition with one of ``conditions``, or an Observation of one of
    ``lab_tests`` whose coded value is one of ``positive_results``."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    source: str
    conditions: list[ValueSetCode] = Field(default_factory=list)
    lab_tests: list[ValueSetCode] = Field(default_factory=list)
    positive_results: list[ValueSetCode] = Field(default_factory=list)


def load_syndromes(folder: Path) -> dict[str, Syndrome]:
    """The syndromes of a knowledge library folder."""
    syndromes = {}
    for path in sorted((folder / "data" / "syndromes").glob("*.yaml")):
        syndrome = Syndrome.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if syndrome.id != path.stem:
            raise ValueError(f"{path.name}: file name must equal the syndrome id {syndrome.id!r}")
        syndromes[syndrome.id] = syndrome
    return syndromes

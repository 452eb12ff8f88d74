"""Syndromes and conditions under population surveillance, as data: which recorded
diagnoses, and which laboratory tests with which results, count as a case."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import Field

from knowledge.artifact import StrictModel
from knowledge.terminology import ValueSetCode


def _keys(codes: list[ValueSetCode]) -> frozenset[str]:
    return frozenset(f"{c.system}|{c.code}" for c in codes)


class Syndrome(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    source: str
    conditions: list[ValueSetCode] = Field(default_factory=list)
    lab_tests: list[ValueSetCode] = Field(default_factory=list)
    positive_results: list[ValueSetCode] = Field(default_factory=list)

    @cached_property
    def _condition_keys(self) -> frozenset[str]:
        return _keys(self.conditions)

    @cached_property
    def _test_keys(self) -> frozenset[str]:
        return _keys(self.lab_tests)

    @cached_property
    def _positive_keys(self) -> frozenset[str]:
        return _keys(self.positive_results)

    def is_case(self, resource_type: str, codes: Sequence[str], value_codes: Sequence[str]) -> bool:
        """A Condition with one of the codes, or a test of the syndrome with a positive
        result (``system|code`` strings, as the feed stores them)."""
        if resource_type == "Condition":
            return not self._condition_keys.isdisjoint(codes)
        if resource_type == "Observation":
            return not self._test_keys.isdisjoint(codes) and not self._positive_keys.isdisjoint(
                value_codes
            )
        return False


def load_syndromes(folder: Path) -> dict[str, Syndrome]:
    """The syndromes of a knowledge library folder."""
    syndromes = {}
    for path in sorted((folder / "data" / "syndromes").glob("*.yaml")):
        syndrome = Syndrome.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if syndrome.id != path.stem:
            raise ValueError(f"{path.name}: file name must equal the syndrome id {syndrome.id!r}")
        syndromes[syndrome.id] = syndrome
    return syndromes

"""Value sets and the RxNorm ingredient map, loaded from data files in knowledge/data/.

Matching is always by code (system + code), never by display text: real records carry
typos and zero-width spaces in displays ("Simvistatin 10 MG").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AnyUrl, Field, model_validator

from fhir_client.codes import RXNORM, SYSTEM_NAMES, normalize_code, normalize_system
from fhir_client.record import Code
from knowledge.artifact import StrictModel

# Value sets hold thousands of codes: the C parser loads them about ten times faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ValueSetCode(StrictModel):
    system: str
    code: str
    display: str | None = None


class PublishedSource(StrictModel):
    """A value-set expansion as published (VSAC / eCQM content, an implementation guide)."""

    oid: str = Field(min_length=3, description="VSAC OID, or the publisher's ValueSet id")
    title: str
    version: str = Field(description="the published value-set version (VSAC version or '-')")
    expansion: str = Field(description="the expansion's identifier or timestamp")
    url: AnyUrl = Field(description="the ValueSet's canonical URL")
    source: str = Field(
        min_length=10, description="where the expansion was read: repo, path, commit"
    )


class LocalSource(StrictModel):
    """Codes not taken from a published expansion, with how they were chosen.

    ``built``: no published set exists; the codes were selected from the code system by the
    stated method. ``extension``: codes added to a published set (documented local extension).
    """

    kind: Literal["built", "extension"]
    method: str = Field(min_length=30)


class ExcludedCode(StrictModel):
    """A code of a published expansion deliberately left out, and why (e.g. a goal, not a result)."""

    system: str
    code: str
    reason: str = Field(min_length=10)


class ValueSetInclude(StrictModel):
    published: PublishedSource | None = None
    local: LocalSource | None = None
    excluded: list[ExcludedCode] = Field(default_factory=list)
    codes: list[ValueSetCode] = Field(default_factory=list)
    rxnorm_names: list[str] = Field(
        default_factory=list,
        description=(
            "ingredient names matched as words in a medication's RxNorm names and text, for "
            "drugs whose RxCUIs no citable source gave (a local part only)"
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> ValueSetInclude:
        if (self.published is None) == (self.local is None):
            raise ValueError("each include names exactly one of `published` or `local`")
        if self.excluded and self.published is None:
            raise ValueError("only a published expansion can have excluded codes")
        if self.rxnorm_names and self.local is None:
            raise ValueError("only a local part can match drugs by name")
        if not self.codes and not self.rxnorm_names:
            raise ValueError("an include needs codes (or, for a local part, rxnorm_names)")
        listed = {(c.system, c.code) for c in self.codes}
        if any((e.system, e.code) in listed for e in self.excluded):
            raise ValueError("an excluded code is still listed among the codes")
        return self


class ValueSetFile(StrictModel):
    id: str
    title: str
    purpose: str = Field(min_length=10, description="what the rules use the value set for")
    includes: list[ValueSetInclude] = Field(min_length=1)


class Ingredient(StrictModel):
    rxcui: str
    name: str
    classes: list[str] = Field(default_factory=list)


class Product(StrictModel):
    rxcui: str
    name: str
    ingredients: list[str] = Field(min_length=1, description="ingredient RxCUIs")


class IngredientMapFile(StrictModel):
    source: str
    ingredients: list[Ingredient]
    products: list[Product]


@dataclass(frozen=True)
class ValueSet:
    id: str
    title: str
    purpose: str
    codes: frozenset[Code]
    includes: tuple[ValueSetInclude, ...] = ()

    @cached_property
    def rxnorm_codes(self) -> frozenset[str]:
        """The RxNorm code strings of the set (ingredients and products), computed once."""
        return frozenset(code for system, code in self.codes if system == RXNORM)

    @cached_property
    def rxnorm_names(self) -> frozenset[str]:
        """Ingredient names the set matches by name (see ``ValueSetInclude.rxnorm_names``)."""
        return frozenset(name.lower() for i in self.includes for name in i.rxnorm_names)

    def display(self, code: Code) -> str | None:
        """The display the value set gives ``code`` (None when it gives none)."""
        for include in self.includes:
            for entry in include.codes:
                if (entry.system, entry.code) == code:
                    return entry.display
        return None

    @property
    def description(self) -> str:
        """The purpose and where every part of the set comes from, in one paragraph."""
        parts = []
        for include in self.includes:
            if include.published is not None:
                p = include.published
                parts.append(f"{p.title} (OID {p.oid}, version {p.version}; {p.source})")
            elif include.local is not None:
                parts.append(f"local {include.local.kind}: {include.local.method}")
        return f"{self.purpose} Sources: " + "; ".join(parts)

    def codes_by_system(self) -> dict[str, int]:
        """How many codes each code system contributes, by the system's name."""
        counts: dict[str, int] = {}
        for system, _ in self.codes:
            name = SYSTEM_NAMES.get(system, system)
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))


def read_value_set_file(path: Path) -> ValueSetFile:
    return ValueSetFile.model_validate(yaml.load(path.read_text(encoding="utf-8"), _Loader))


def load_value_sets(folder: Path) -> dict[str, ValueSet]:
    """Every value set in ``folder``; codes are normalised as records' codes are."""
    sets: dict[str, ValueSet] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = read_value_set_file(path)
        if data.id in sets:
            raise ValueError(f"value set {data.id} defined twice")
        if path.stem != data.id:
            raise ValueError(f"{path.name}: file name must equal the value set id {data.id!r}")
        codes = set()
        for include in data.includes:
            for c in include.codes:
                system = normalize_system(c.system)
                codes.add((system, normalize_code(system, c.code)))
        sets[data.id] = ValueSet(
            data.id, data.title, data.purpose, frozenset(codes), tuple(data.includes)
        )
    return sets


@dataclass(frozen=True)
class MedicationIndex:
    """Maps RxNorm codes (clinical drugs, branded drugs, or ingredients) to ingredients and classes."""

    ingredient_names: dict[str, str]
    ingredient_classes: dict[str, frozenset[str]]
    product_ingredients: dict[str, frozenset[str]]
    product_names: dict[str, str]

    @classmethod
    def load(cls, folder: Path) -> MedicationIndex:
        """Merge every map file in ``folder``; a code defined twice must be defined alike."""
        names: dict[str, str] = {}
        classes: dict[str, frozenset[str]] = {}
        products: dict[str, frozenset[str]] = {}
        product_names: dict[str, str] = {}
        for path in sorted(folder.glob("*.yaml")):
            data = IngredientMapFile.model_validate(
                yaml.load(path.read_text(encoding="utf-8"), _Loader)
            )
            for ingredient in data.ingredients:
                _merge(names, ingredient.rxcui, ingredient.name, path)
                _merge(classes, ingredient.rxcui, frozenset(ingredient.classes), path)
            for product in data.products:
                _merge(products, product.rxcui, frozenset(product.ingredients), path)
                product_names[product.rxcui] = product.name
        unknown = {rx for ingredients in products.values() for rx in ingredients} - names.keys()
        if unknown:
            raise ValueError(f"products name unknown ingredients: {sorted(unknown)}")
        return cls(
            ingredient_names=names,
            ingredient_classes=classes,
            product_ingredients=products,
            product_names=product_names,
        )

    def ingredients(self, codes: Iterable[Code]) -> frozenset[str]:
        """Ingredient RxCUIs of a medication's codings (an ingredient code maps to itself)."""
        found: set[str] = set()
        for system, code in codes:
            if system != RXNORM:
                continue
            if code in self.product_ingredients:
                found |= self.product_ingredients[code]
            elif code in self.ingredient_names:
                found.add(code)
        return frozenset(found)

    def unknown_codes(self, medications: Iterable[Iterable[Code]]) -> tuple[str, ...]:
        """RxNorm codes of medications none of whose codes maps to an ingredient, sorted."""
        unknown: set[str] = set()
        for codes in medications:
            codes = tuple(codes)
            if not self.ingredients(codes):
                unknown.update(code for system, code in codes if system == RXNORM)
        return tuple(sorted(unknown))

    def classes(self, codes: Iterable[Code]) -> frozenset[str]:
        return frozenset(
            c for rx in self.ingredients(codes) for c in self.ingredient_classes.get(rx, ())
        )


def _merge(into: dict[str, Any], key: str, value: Any, path: Path) -> None:
    if key in into and into[key] != value:
        raise ValueError(
            f"{path.name}: RxCUI {key} conflicts with its definition in another map file"
        )
    into[key] = value

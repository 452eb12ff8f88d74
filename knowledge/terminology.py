"""Value sets and the RxNorm ingredient map, loaded from data files in knowledge/data/.

Matching is always by code (system + code), never by display text: real records carry
typos and zero-width spaces in displays ("Simvistatin 10 MG").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import AnyUrl, Field

from fhir_client.codes import RXNORM
from fhir_client.record import Code
from knowledge.artifact import StrictModel


class ValueSetCode(StrictModel):
    system: str
    code: str
    display: str


class ValueSetFile(StrictModel):
    id: str
    title: str
    source: str
    url: AnyUrl | None = None
    codes: list[ValueSetCode] = Field(min_length=1)


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
    source: str
    codes: frozenset[Code]


def load_value_sets(folder: Path) -> dict[str, ValueSet]:
    sets: dict[str, ValueSet] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = ValueSetFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        if data.id in sets:
            raise ValueError(f"value set {data.id} defined twice")
        sets[data.id] = ValueSet(
            data.id, data.title, data.source, frozenset((c.system, c.code) for c in data.codes)
        )
    return sets


@dataclass(frozen=True)
class MedicationIndex:
    """Maps RxNorm codes (clinical drugs, branded drugs, or ingredients) to ingredients and classes."""

    ingredient_names: dict[str, str]
    ingredient_classes: dict[str, frozenset[str]]
    product_ingredients: dict[str, frozenset[str]]

    @classmethod
    def load(cls, folder: Path) -> MedicationIndex:
        """Merge every map file in ``folder``; a code defined twice must be defined alike."""
        names: dict[str, str] = {}
        classes: dict[str, frozenset[str]] = {}
        products: dict[str, frozenset[str]] = {}
        for path in sorted(folder.glob("*.yaml")):
            data = IngredientMapFile.model_validate(
                yaml.safe_load(path.read_text(encoding="utf-8"))
            )
            for ingredient in data.ingredients:
                _merge(names, ingredient.rxcui, ingredient.name, path)
                _merge(classes, ingredient.rxcui, frozenset(ingredient.classes), path)
            for product in data.products:
                _merge(products, product.rxcui, frozenset(product.ingredients), path)
        unknown = {rx for ingredients in products.values() for rx in ingredients} - names.keys()
        if unknown:
            raise ValueError(f"products name unknown ingredients: {sorted(unknown)}")
        return cls(ingredient_names=names, ingredient_classes=classes, product_ingredients=products)

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

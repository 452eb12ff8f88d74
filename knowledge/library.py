"""Loading the knowledge library: artifacts, value sets and the medication index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from knowledge.artifact import load_artifact
from knowledge.logic import LOGIC
from knowledge.rule import Knowledge, Rule
from knowledge.syndromes import load_syndromes
from knowledge.terminology import MedicationIndex, load_value_sets

KNOWLEDGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class KnowledgeLibrary:
    rules: tuple[Rule, ...]
    knowledge: Knowledge

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def load_library(folder: Path = KNOWLEDGE_DIR) -> KnowledgeLibrary:
    """Load and check every artifact; rules whose status is not ``active`` are not served."""
    knowledge = Knowledge(
        value_sets=load_value_sets(folder / "data" / "value_sets"),
        medications=MedicationIndex.load(folder / "data" / "rxnorm"),
        syndromes=load_syndromes(folder),
    )
    rules: list[Rule] = []
    for path in sorted((folder / "rules").glob("*.yaml")):
        artifact = load_artifact(path)
        if artifact.logic not in LOGIC:
            raise ValueError(f"{path.name}: unknown logic {artifact.logic!r}")
        missing = set(artifact.value_sets) - knowledge.value_sets.keys()
        if missing:
            raise ValueError(f"{path.name}: unknown value sets {sorted(missing)}")
        if path.stem != artifact.id:
            raise ValueError(f"{path.name}: file name must equal the rule id {artifact.id!r}")
        if artifact.status == "active":
            rules.append(Rule(artifact, LOGIC[artifact.logic], knowledge))
    return KnowledgeLibrary(tuple(rules), knowledge)

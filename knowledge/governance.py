"""Governance of the knowledge library: validation, versions and their differences.

The current version of a rule is knowledge/rules/<id>.yaml; every version it replaced is
kept verbatim as knowledge/rules/archive/<id>@<version>.yaml, so any two versions can be
compared and the organisation keeps a memory of what it changed and why.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from knowledge.artifact import RuleArtifact, load_artifact
from knowledge.experiment import load_experiment
from knowledge.library import KNOWLEDGE_DIR, load_library
from knowledge.logic import LOGIC
from knowledge.terminology import MedicationIndex, load_value_sets


def _rules_dir(folder: Path) -> Path:
    return folder / "rules"


def rule_paths(folder: Path = KNOWLEDGE_DIR) -> dict[str, Path]:
    return {path.stem: path for path in sorted(_rules_dir(folder).glob("*.yaml"))}


def archived_versions(rule_id: str, folder: Path = KNOWLEDGE_DIR) -> dict[str, Path]:
    archive = _rules_dir(folder) / "archive"
    return {path.stem.split("@", 1)[1]: path for path in sorted(archive.glob(f"{rule_id}@*.yaml"))}


def version_text(rule_id: str, version: str, folder: Path = KNOWLEDGE_DIR) -> str:
    """The artifact text of one version of a rule (current or archived)."""
    current = rule_paths(folder).get(rule_id)
    if current is None:
        raise KeyError(f"no rule {rule_id!r}")
    if load_artifact(current).version == version:
        return current.read_text(encoding="utf-8")
    archived = archived_versions(rule_id, folder).get(version)
    if archived is None:
        raise KeyError(f"rule {rule_id!r} has no version {version!r}")
    return archived.read_text(encoding="utf-8")


def diff(rule_id: str, old: str, new: str, folder: Path = KNOWLEDGE_DIR) -> str:
    return "".join(
        difflib.unified_diff(
            version_text(rule_id, old, folder).splitlines(keepends=True),
            version_text(rule_id, new, folder).splitlines(keepends=True),
            fromfile=f"{rule_id}@{old}",
            tofile=f"{rule_id}@{new}",
        )
    )


def version_key(version: str) -> tuple[int, ...]:
    """A semantic version as a sortable tuple (1.10.0 after 1.9.0)."""
    return tuple(int(part) for part in version.split("."))


def parse_artifact(text: str) -> RuleArtifact:
    """A rule artifact from YAML text (a proposal), checked like a file."""
    try:
        return RuleArtifact.model_validate(yaml.safe_load(text))
    except (ValueError, yaml.YAMLError) as error:
        raise ValueError(f"invalid rule artifact: {error}") from error


def check_new_version(artifact: RuleArtifact, folder: Path = KNOWLEDGE_DIR) -> str:
    """The version the artifact would replace ("" for a new rule); ValueError unless it is
    newer, and its logic and value sets exist in the library."""
    if artifact.logic not in LOGIC:
        raise ValueError(f"unknown logic {artifact.logic!r}")
    missing = set(artifact.value_sets) - load_value_sets(folder / "data" / "value_sets").keys()
    if missing:
        raise ValueError(f"unknown value sets {sorted(missing)}")
    current = rule_paths(folder).get(artifact.id)
    if current is None:
        return ""
    live = load_artifact(current).version
    if version_key(artifact.version) <= version_key(live):
        raise ValueError(f"{artifact.id} {artifact.version} is not newer than {live}")
    return live


def install_version(text: str, folder: Path = KNOWLEDGE_DIR) -> RuleArtifact:
    """Make the artifact in ``text`` the rule's current version: the current file is kept
    verbatim in the archive. If the library then fails validation, both files are put back
    as they were and ValueError lists the problems."""
    artifact = parse_artifact(text)
    check_new_version(artifact, folder)
    target = _rules_dir(folder) / f"{artifact.id}.yaml"
    previous = target.read_text(encoding="utf-8") if target.exists() else None
    archived = None
    if previous is not None:
        old = load_artifact(target).version
        archived = _rules_dir(folder) / "archive" / f"{artifact.id}@{old}.yaml"
        archived.parent.mkdir(exist_ok=True)
        archived.write_text(previous, encoding="utf-8")
    target.write_text(text, encoding="utf-8")
    problems = validate(folder)
    if problems:
        if previous is None:
            target.unlink()
        else:
            target.write_text(previous, encoding="utf-8")
        if archived is not None:
            archived.unlink()
        raise ValueError("; ".join(problems))
    return artifact


def validate(folder: Path = KNOWLEDGE_DIR) -> list[str]:
    """Every problem in the library, one line each; empty when it may be deployed."""
    problems: list[str] = []
    try:
        value_sets = load_value_sets(folder / "data" / "value_sets")
        MedicationIndex.load(folder / "data" / "rxnorm")
    except (ValueError, OSError) as error:
        return [f"terminology: {error}"]
    artifacts: dict[str, RuleArtifact] = {}
    for rule_id, path in rule_paths(folder).items():
        try:
            artifact = load_artifact(path)
        except (ValueError, OSError) as error:
            problems.append(str(error))
            continue
        artifacts[rule_id] = artifact
        if artifact.id != rule_id:
            problems.append(f"{path.name}: file name must equal the rule id {artifact.id!r}")
        if artifact.logic not in LOGIC:
            problems.append(f"{path.name}: unknown logic {artifact.logic!r}")
        for name in sorted(set(artifact.value_sets) - value_sets.keys()):
            problems.append(f"{path.name}: unknown value set {name!r}")
        if artifact.status == "active" and not any(c.evidence_grade for c in artifact.citations):
            problems.append(
                f"{path.name}: an active rule needs an evidence grade on at least one citation"
            )
        changelog_versions = {entry.version for entry in artifact.changelog}
        for version, archived in archived_versions(rule_id, folder).items():
            try:
                old = load_artifact(archived)
            except (ValueError, OSError) as error:
                problems.append(str(error))
                continue
            if old.version != version:
                problems.append(f"{archived.name}: holds version {old.version}, not {version}")
            if version not in changelog_versions:
                problems.append(
                    f"{path.name}: archived version {version} is missing from the change log"
                )
            if version_key(version) >= version_key(artifact.version):
                problems.append(
                    f"{archived.name}: archived version is not older than the current one"
                )
    for path in sorted((folder / "experiments").glob("*.yaml")):
        try:
            experiment = load_experiment(path)
            if experiment.rule not in artifacts:
                raise ValueError(f"{path.name}: no rule {experiment.rule!r}")
            experiment.check_against(artifacts[experiment.rule])
        except (ValueError, OSError) as error:
            problems.append(f"{path.name}: {error}" if path.name not in str(error) else str(error))
    if not problems:
        try:
            load_library(folder)
        except (ValueError, OSError) as error:
            problems.append(str(error))
    return problems

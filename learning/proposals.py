"""Change proposals: a new rule version is proposed with its rationale and evidence, reviewed
by someone else, and on approval installed in the knowledge folder (the old version kept in
the archive). The store keeps who proposed and approved what and why; `rule_history` joins
that with the change log and what was measured while each version was live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from evaluation.version_effects import VersionEffect, version_effects
from knowledge import governance
from knowledge.artifact import load_artifact
from knowledge.library import KNOWLEDGE_DIR
from storage.repository import Store
from storage.tables import ChangeProposal

SOURCES = ("clinician-comment", "override-pattern", "experiment", "shadow", "evidence-update")
"""What may prompt a change; experiment and shadow take the run's id (experiment:ID)."""


def propose(
    store: Store,
    artifact_text: str,
    *,
    rationale: str,
    source: str,
    evidence: str,
    proposed_by: str,
    folder: Path = KNOWLEDGE_DIR,
) -> ChangeProposal:
    kind = source.split(":", 1)[0]
    if kind not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)} (experiment:ID, shadow:ID)")
    if not rationale.strip():
        raise ValueError("a proposal needs a rationale")
    artifact = governance.parse_artifact(artifact_text)
    from_version = governance.check_new_version(artifact, folder)
    proposal = ChangeProposal(
        rule_id=artifact.id,
        from_version=from_version,
        to_version=artifact.version,
        artifact_text=artifact_text,
        rationale=rationale,
        source=source,
        evidence=evidence,
        proposed_by=proposed_by,
        status="proposed",
    )
    store.add_proposal(proposal)
    return proposal


def review(
    store: Store,
    proposal_id: int,
    *,
    approve: bool,
    reviewed_by: str,
    note: str,
    folder: Path = KNOWLEDGE_DIR,
) -> ChangeProposal:
    """Approve (install the version) or reject a proposal. Nobody reviews their own, and a
    proposal made against a version that has since changed must be made again."""
    proposal = store.proposal(proposal_id)
    if proposal is None or proposal.status != "proposed":
        raise ValueError(f"no proposal {proposal_id} waiting for review")
    if reviewed_by.strip().casefold() == proposal.proposed_by.strip().casefold():
        raise ValueError("a proposal is reviewed by someone other than its author")
    if approve:
        current = governance.rule_paths(folder).get(proposal.rule_id)
        live = load_artifact(current).version if current else ""
        if live != proposal.from_version:
            raise ValueError(
                f"{proposal.rule_id} is at {live or 'nothing'} now, the proposal changes "
                f"{proposal.from_version or 'nothing'}: propose it again"
            )
        governance.install_version(proposal.artifact_text, folder)
    return store.decide_proposal(
        proposal_id, "approved" if approve else "rejected", reviewed_by, note
    )


@dataclass(frozen=True)
class VersionHistory:
    version: str
    date: str
    change: str
    reason: str
    where: str
    """current, archived, or "" when only the change log remembers it."""
    proposal: ChangeProposal | None
    effect: VersionEffect | None


def rule_history(
    store: Store | None, rule_id: str, folder: Path = KNOWLEDGE_DIR
) -> list[VersionHistory]:
    """Every version of the rule, newest first, with its review and measured effect (both
    None without a store)."""
    path = governance.rule_paths(folder).get(rule_id)
    if path is None:
        raise KeyError(rule_id)
    artifact = load_artifact(path)
    archived = governance.archived_versions(rule_id, folder)
    proposals: dict[str, ChangeProposal] = {}
    effects: dict[str, VersionEffect] = {}
    if store is not None:
        for proposal in store.proposals(rule_id):
            if proposal.status == "approved":
                proposals[proposal.to_version] = proposal
        rows = store.card_feedback_rows(
            datetime.min.replace(tzinfo=UTC), datetime.now(UTC), rule_id
        )
        effects = version_effects(rows)
    entries = sorted(
        artifact.changelog,
        key=lambda e: (e.date, governance.version_key(e.version)),
        reverse=True,
    )
    return [
        VersionHistory(
            version=entry.version,
            date=entry.date.isoformat(),
            change=entry.change,
            reason=entry.reason,
            where="current"
            if entry.version == artifact.version
            else ("archived" if entry.version in archived else ""),
            proposal=proposals.get(entry.version),
            effect=effects.get(entry.version),
        )
        for entry in entries
    ]

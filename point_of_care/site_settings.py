"""Site settings of rules: on or off, and thresholds moved within the bounds their artifact sets.

Every change is written with who made it and why, in the same transaction as the change
itself. A rule that can raise a critical card cannot be switched off here (critical
advice is never suppressed); retire it through knowledge governance instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from knowledge.library import KnowledgeLibrary
from knowledge.rule import Rule
from storage.tables import RuleSetting, RuleSettingChange, utcnow


class SettingRejected(ValueError):
    """The requested setting is outside what the rule's artifact allows."""


@dataclass(frozen=True)
class EffectiveSetting:
    enabled: bool
    thresholds: Mapping[str, float]
    suppression_days: int | None


def load_settings(engine: Engine) -> dict[str, EffectiveSetting]:
    with Session(engine) as session:
        return {
            row.rule_id: EffectiveSetting(row.enabled, dict(row.thresholds), row.suppression_days)
            for row in session.exec(select(RuleSetting))
        }


def configure_rule(
    engine: Engine,
    library: KnowledgeLibrary,
    rule_id: str,
    *,
    changed_by: str,
    reason: str,
    enabled: bool | None = None,
    thresholds: Mapping[str, float] | None = None,
    suppression_days: int | None = None,
) -> RuleSetting:
    try:
        artifact = library.rule(rule_id).artifact
    except KeyError:
        raise SettingRejected(f"no active rule {rule_id!r}") from None
    if not changed_by.strip() or not reason.strip():
        raise SettingRejected("say who makes the change and why (--by, --reason)")
    if enabled is False and artifact.can_be_critical:
        raise SettingRejected(
            f"{rule_id} can raise critical cards and cannot be switched off locally"
        )
    for name, value in (thresholds or {}).items():
        bounds = artifact.site_overridable.get(name)
        if bounds is None:
            raise SettingRejected(f"threshold {name!r} of {rule_id} is not site-adjustable")
        if not bounds.min <= value <= bounds.max:
            raise SettingRejected(f"{name} must be between {bounds.min:g} and {bounds.max:g}")
    if suppression_days is not None and suppression_days < 0:
        raise SettingRejected("suppression days cannot be negative")
    with Session(engine) as session:
        row = session.get(RuleSetting, rule_id)
        before = row.model_dump(mode="json", exclude={"updated_at"}) if row else {}
        if row is None:
            row = RuleSetting(rule_id=rule_id, updated_by=changed_by, reason=reason)
        if enabled is not None:
            row.enabled = enabled
        if thresholds:
            row.thresholds = {**row.thresholds, **thresholds}
        if suppression_days is not None:
            row.suppression_days = suppression_days
        row.updated_at, row.updated_by, row.reason = utcnow(), changed_by, reason
        after = row.model_dump(mode="json", exclude={"updated_at"})
        session.add(row)
        session.add(
            RuleSettingChange(
                rule_id=rule_id, changed_by=changed_by, reason=reason, before=before, after=after
            )
        )
        session.commit()
        session.refresh(row)
        return row


def audit_trail(engine: Engine, rule_id: str | None = None) -> list[RuleSettingChange]:
    with Session(engine) as session:
        statement = select(RuleSettingChange).order_by(col(RuleSettingChange.id))
        if rule_id is not None:
            statement = statement.where(RuleSettingChange.rule_id == rule_id)
        return list(session.exec(statement))


def apply_settings(
    library: KnowledgeLibrary, settings: Mapping[str, EffectiveSetting]
) -> KnowledgeLibrary:
    """The library as this site runs it: switched-off rules left out, thresholds overridden."""
    rules: list[Rule] = []
    for rule in library.rules:
        setting = settings.get(rule.id)
        if setting is None:
            rules.append(rule)
            continue
        if not setting.enabled and not rule.artifact.can_be_critical:
            continue
        allowed = {
            k: v for k, v in setting.thresholds.items() if k in rule.artifact.site_overridable
        }
        artifact = rule.artifact.model_copy(
            update={"thresholds": {**rule.artifact.thresholds, **allowed}}
        )
        rules.append(Rule(artifact, rule.logic, rule.knowledge))
    return KnowledgeLibrary(tuple(rules), library.knowledge)

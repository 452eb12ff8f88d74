"""``lhs knowledge``: see, check, compare and export the cited rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import Settings
from cli.errors import fail, fail_usage
from cli.store import open_store
from knowledge import governance
from knowledge.artifact import load_artifact
from knowledge.export import DEFAULT_BASE_URL, library_resource, plan_definition, value_set_resource
from knowledge.library import load_library

knowledge_app = typer.Typer(
    help="The knowledge library: rules, citations, versions.", no_args_is_help=True
)


@knowledge_app.command("list")
def list_rules() -> None:
    """Every rule with its version, status and hooks."""
    typer.echo(f"{'id':<36} {'version':<8} {'status':<8} {'hooks':<32} title")
    for rule_id, path in governance.rule_paths(_folder()).items():
        artifact = load_artifact(path)
        hooks = ",".join(artifact.hooks)
        typer.echo(
            f"{rule_id:<36} {artifact.version:<8} {artifact.status:<8} {hooks:<32} {artifact.title}"
        )


@knowledge_app.command()
def show(rule_id: str) -> None:
    """The rule's artifact as stored: thresholds, wording, citations, change log."""
    path = governance.rule_paths(_folder()).get(rule_id)
    if path is None:
        fail_usage(f"no rule {rule_id!r}")
    typer.echo(path.read_text(encoding="utf-8"))


@knowledge_app.command()
def validate() -> None:
    """Check every artifact, value set and map; exit 1 on any problem (run in CI)."""
    problems = governance.validate(_folder())
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"knowledge library valid: {len(governance.rule_paths(_folder()))} rules")


@knowledge_app.command()
def coverage(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
) -> None:
    """Per rule, which code systems and how many codes each of its value sets holds, where
    they come from, and how many RxNorm products resolve to its drugs."""
    from collections import Counter
    from dataclasses import asdict

    from knowledge.coverage import coverage as value_set_coverage

    rows = value_set_coverage(load_library(_folder()))
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    typer.echo(f"{'rule':<36} {'value set':<44} {'sources':<30} {'products':>8}  codes by system")
    for row in rows:
        parts = Counter(("published",) * len(row.published) + row.local_parts)
        sources = " + ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in parts.items())
        systems = ", ".join(f"{name} {count}" for name, count in row.codes_by_system.items())
        if row.matched_by_name:
            systems += f"; by name only: {', '.join(row.matched_by_name)}"
        products = str(row.rxnorm_products) if row.rxnorm_products else "-"
        typer.echo(
            f"{row.rule_id:<36} {row.value_set_id:<44} {sources:<30} {products:>8}  {systems}"
        )


@knowledge_app.command()
def diff(rule_id: str, old: str, new: str) -> None:
    """The differences between two versions of a rule."""
    try:
        typer.echo(governance.diff(rule_id, old, new, _folder()) or "no differences")
    except KeyError as error:
        fail_usage(str(error.args[0]))


@knowledge_app.command()
def history(rule_id: str) -> None:
    """Every version of a rule: what changed and why, who proposed and approved it, and what
    clinicians did with its cards while it was live."""
    from learning.proposals import rule_history
    from storage.migrate import current_revision, head_revision

    try:
        migrated = current_revision(Settings().resolved_database_url) == head_revision()
    except SQLAlchemyError:
        migrated = False
    store = open_store(Settings()) if migrated else None
    if store is None:
        typer.echo("(no migrated database: reviews and measured effects not shown)")
    try:
        versions = rule_history(store, rule_id, _folder())
    except KeyError:
        fail_usage(f"no rule {rule_id!r}")
    for v in versions:
        typer.echo(f"{v.date}  v{v.version:<8} {v.where:<9} {v.change}\n{'':<22}why: {v.reason}")
        if v.proposal is not None:
            p = v.proposal
            typer.echo(
                f"{'':<22}proposal {p.id} by {p.proposed_by} ({p.source}): {p.rationale}\n"
                f"{'':<22}approved by {p.reviewed_by} on {p.reviewed_at:%Y-%m-%d}: {p.review_note}"
            )
            if p.evidence:
                typer.echo(f"{'':<22}evidence: {p.evidence}")
        e = v.effect
        if e is not None and e.acceptance_rate is not None and e.acceptance_ci is not None:
            change = ""
            if e.change_from_previous is not None:
                d, low, high = e.change_from_previous
                change = f"; {d:+.1%} against the version before (95% CI {low:+.1%} to {high:+.1%})"
            typer.echo(
                f"{'':<22}measured: {e.shown} cards shown, {e.answered} answered, "
                f"{e.acceptance_rate:.1%} accepted (95% CI {e.acceptance_ci[0]:.1%} to "
                f"{e.acceptance_ci[1]:.1%}){change}"
            )
        elif e is not None:
            typer.echo(f"{'':<22}measured: {e.shown} cards shown, none answered")


@knowledge_app.command()
def export(
    out: Annotated[Path, typer.Option(help="Folder for the FHIR JSON files.")] = Path(
        "knowledge-export"
    ),
    base_url: Annotated[
        str, typer.Option(help="Canonical base URL of the artifacts.")
    ] = DEFAULT_BASE_URL,
) -> None:
    """Write every active rule as a FHIR PlanDefinition, with its Library and ValueSets."""
    library = load_library(_folder())
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    used_value_sets: set[str] = set()
    for rule in library.rules:
        for resource in (
            plan_definition(rule.artifact, base_url),
            library_resource(rule.artifact, base_url),
        ):
            (out / f"{resource['resourceType']}-{resource['id']}.json").write_text(
                json.dumps(resource, indent=2)
            )
            written += 1
        used_value_sets |= set(rule.artifact.value_sets)
    for name in sorted(used_value_sets):
        resource = value_set_resource(library.knowledge.value_sets[name], base_url)
        (out / f"ValueSet-{resource['id']}.json").write_text(json.dumps(resource, indent=2))
        written += 1
    typer.echo(f"wrote {written} FHIR resources to {out}")


def _folder() -> Path:
    return Settings().knowledge_dir


@knowledge_app.command()
def configure(
    rule_id: str,
    by: Annotated[str, typer.Option(help="Who makes the change (recorded).")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Switch the rule on or off here.")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE within the artifact's site bounds (repeatable)."),
    ] = None,
    suppress_days: Annotated[
        int | None, typer.Option(help="Days an overridden card is not repeated for the same data.")
    ] = None,
) -> None:
    """Change this site's settings of a rule; the change is audited and applied without a restart."""
    from point_of_care.site_settings import SettingRejected, configure_rule

    values: dict[str, float] = {}
    for item in threshold or []:
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            fail_usage(f"--threshold takes NAME=NUMBER, not {item!r}")
    try:
        row = configure_rule(
            open_store(Settings()).engine,
            load_library(_folder()),
            rule_id,
            changed_by=by,
            reason=reason,
            enabled=enable,
            thresholds=values,
            suppression_days=suppress_days,
        )
    except SettingRejected as error:
        fail_usage(str(error))
    typer.echo(
        f"{rule_id}: enabled={row.enabled} thresholds={row.thresholds} suppression_days={row.suppression_days}"
    )


@knowledge_app.command()
def settings(rule_id: Annotated[str | None, typer.Argument(help="Only this rule.")] = None) -> None:
    """This site's rule settings and the audit trail of their changes."""
    from point_of_care.site_settings import audit_trail

    changes = audit_trail(open_store(Settings()).engine, rule_id)
    if not changes:
        typer.echo("No site settings changed: every rule runs as shipped.")
    for change in changes:
        typer.echo(
            f"{change.changed_at:%Y-%m-%d %H:%M} {change.rule_id} by {change.changed_by}: {change.reason}\n"
            f"    before {json.dumps(change.before, sort_keys=True)}\n    after  {json.dumps(change.after, sort_keys=True)}"
        )


@knowledge_app.command()
def propose(
    artifact: Annotated[
        Path, typer.Argument(help="The rule artifact with its new version (YAML).")
    ],
    by: Annotated[str, typer.Option(help="Who proposes it (recorded).")],
    rationale: Annotated[str, typer.Option(help="Why the rule should change.")],
    source: Annotated[
        str,
        typer.Option(
            help="What prompted it: clinician-comment, override-pattern, experiment:ID, "
            "shadow:ID or evidence-update."
        ),
    ],
    evidence: Annotated[str, typer.Option(help="The evidence: results, comments, citations.")] = "",
) -> None:
    """Record a proposed new version of a rule for review."""
    from learning.proposals import propose as record_proposal

    try:
        proposal = record_proposal(
            open_store(Settings()),
            artifact.read_text(encoding="utf-8"),
            rationale=rationale,
            source=source,
            evidence=evidence,
            proposed_by=by,
            folder=_folder(),
        )
    except (ValueError, OSError) as error:
        fail(f"not proposed: {error}")
    typer.echo(
        f"proposal {proposal.id}: {proposal.rule_id} {proposal.from_version or '(new)'} -> "
        f"{proposal.to_version}, waiting for review (lhs knowledge review {proposal.id})"
    )


@knowledge_app.command()
def proposals(
    rule_id: Annotated[str | None, typer.Argument(help="Only this rule.")] = None,
) -> None:
    """Every change proposal, with its status and review."""
    found = open_store(Settings()).proposals(rule_id)
    if not found:
        typer.echo("No change proposals.")
    for p in found:
        review = f"; {p.status} by {p.reviewed_by}: {p.review_note}" if p.reviewed_by else ""
        typer.echo(
            f"{p.id}  {p.status:<9} {p.rule_id} {p.from_version or '(new)'} -> {p.to_version}  "
            f"by {p.proposed_by} ({p.source}): {p.rationale}{review}"
        )


@knowledge_app.command()
def review(
    proposal_id: int,
    by: Annotated[str, typer.Option(help="The reviewer (not the author).")],
    note: Annotated[str, typer.Option(help="The reviewer's reasons (recorded).")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="Approve (install) or reject.")
    ],
) -> None:
    """Approve a proposal (the new version is installed in the knowledge folder, the old one
    archived) or reject it."""
    from learning.proposals import review as record_review

    try:
        proposal = record_review(
            open_store(Settings()),
            proposal_id,
            approve=approve,
            reviewed_by=by,
            note=note,
            folder=_folder(),
        )
    except ValueError as error:
        fail(f"not reviewed: {error}")
    if proposal.status == "approved":
        typer.echo(
            f"approved: {proposal.rule_id} {proposal.to_version} installed in {_folder()}; "
            f'commit it ("{proposal.rule_id} {proposal.to_version}, proposal {proposal.id}") '
            "and restart the service to serve it"
        )
    else:
        typer.echo(f"rejected proposal {proposal.id}")


@knowledge_app.command()
def feedback(
    rule_id: Annotated[str | None, typer.Argument(help="Only this rule.")] = None,
    days: Annotated[int, typer.Option(help="Look back this many days.")] = 90,
) -> None:
    """What clinicians say about each rule (override reasons and comments); the rules that
    most need review first."""
    from datetime import UTC, datetime, timedelta

    from evaluation.clinician_voice import render, rule_voices

    now = datetime.now(UTC)
    rows = open_store(Settings()).card_feedback_rows(now - timedelta(days=days), now, rule_id)
    typer.echo(render(rule_voices(rows)))

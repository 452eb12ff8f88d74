"""The organisation's memory of every change: clinicians' override reasons and comments per
rule, a change proposed with its rationale and evidence, reviewed by someone else, installed
as a new version (the old one archived), and `lhs knowledge history` showing who approved
what and why and what clinicians did with each version's cards (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime

import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from evaluation.clinician_voice import rule_voices
from evaluation.feedback_analytics import CardRow
from knowledge.artifact import load_artifact
from knowledge.library import KNOWLEDGE_DIR
from point_of_care.examples import EXAMPLES
from tests.service_app import app_factory

runner = CliRunner()
RULE = "lace-readmission-risk"
SERVICE = "lhs-encounter-discharge"


def _knowledge_copy(tmp_path):
    folder = tmp_path / "knowledge"
    for part in ("rules", "data", "experiments"):
        shutil.copytree(KNOWLEDGE_DIR / part, folder / part)
    return folder


def _new_version(folder, version: str, summary: str) -> str:
    raw = yaml.safe_load((folder / "rules" / f"{RULE}.yaml").read_text())
    raw["version"] = version
    raw["cards"]["high_risk"]["summary"] = summary
    raw["changelog"].insert(
        0,
        {
            "date": date.today().isoformat(),
            "version": version,
            "change": "action-first wording of the card",
            "reason": "the wording experiment found more follow-up booked with it",
        },
    )
    return yaml.safe_dump(raw, sort_keys=False)


def _serve_and_answer(app, patients: range, accept_every: int, comment: str) -> None:
    """Discharges with the LACE card; every ``accept_every``-th is accepted, the others
    overridden as already addressed, with a comment."""
    with TestClient(app) as client:
        for i in patients:
            request = json.loads(
                json.dumps(EXAMPLES[SERVICE](date.today())).replace("example-discharge", f"p{i}")
            )
            cards = client.post(f"/cds-services/{SERVICE}", json=request).json()["cards"]
            card = next(c for c in cards if c["source"]["topic"]["code"] == RULE)
            item = {
                "card": card["uuid"],
                "outcome": "accepted" if i % accept_every == 0 else "overridden",
                "outcomeTimestamp": datetime.now(UTC).isoformat(),
            }
            if item["outcome"] == "accepted":
                item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
            else:
                reason = next(
                    r for r in card["overrideReasons"] if r["code"] == "already-addressed"
                )
                item["overrideReason"] = {"reason": reason, "userComment": comment}
            response = client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]})
            assert response.status_code == 200, response.text


def test_a_change_is_proposed_reviewed_installed_and_remembered(tmp_path, database_url):
    folder = _knowledge_copy(tmp_path)
    make_app = app_factory(tmp_path / "data")
    app = make_app(database_url=database_url, knowledge_dir=folder)
    env = {
        "LHS_DATA_DIR": str(tmp_path / "data"),
        "LHS_DATABASE_URL": app.state.lhs.settings.resolved_database_url,
        "LHS_KNOWLEDGE_DIR": str(folder),
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    live = load_artifact(folder / "rules" / f"{RULE}.yaml").version
    # Version 1.1.0 in use: 1 in 4 accepted, the others overridden with a comment.
    _serve_and_answer(app, range(0, 20), 4, "follow-up already booked by the ward")

    voice = runner.invoke(cli, ["knowledge", "feedback", RULE], env=env)
    assert voice.exit_code == 0, voice.output
    assert "NEEDS REVIEW  lace-readmission-risk: 20 shown, 20 answered, 15 overridden 75%" in (
        voice.output
    )
    assert "15 x Already addressed or being managed" in voice.output
    assert '"follow-up already booked by the ward"' in voice.output
    assert "suggests: misses care already given" in voice.output

    proposal_file = tmp_path / "proposal.yaml"
    proposal_file.write_text(
        _new_version(folder, "1.2.0", "Book follow-up within 7 days: LACE {score}")
    )
    args = ["knowledge", "propose", str(proposal_file), "--by", "Dr Author"]
    evidence = ["--evidence", "experiment lace-follow-up-wording: +0.124 (95% CI +0.057 to +0.190)"]
    unsourced = runner.invoke(cli, [*args, "--rationale", "better", "--source", "hunch"], env=env)
    assert unsourced.exit_code == 1 and "source must be one of" in unsourced.output
    older = tmp_path / "older.yaml"
    older.write_text(_new_version(folder, "1.0.5", "x {score}"))
    refused = runner.invoke(
        cli,
        [
            "knowledge",
            "propose",
            str(older),
            "--by",
            "A",
            "--rationale",
            "r",
            "--source",
            "shadow:s",
        ],
        env=env,
    )
    assert refused.exit_code == 1 and "not newer" in refused.output
    proposed = runner.invoke(
        cli,
        [
            *args,
            "--rationale",
            "clinicians book follow-up more often when the card leads with the action",
            "--source",
            "experiment:lace-follow-up-wording",
            *evidence,
        ],
        env=env,
    )
    assert proposed.exit_code == 0, proposed.output
    assert f"{RULE} {live} -> 1.2.0" in proposed.output
    # A competing proposal against the same version: stale once the first is approved.
    rival = tmp_path / "rival.yaml"
    rival.write_text(_new_version(folder, "1.2.1", "Rival wording, LACE {score}"))
    assert (
        runner.invoke(
            cli,
            [
                "knowledge",
                "propose",
                str(rival),
                "--by",
                "Dr Other",
                "--rationale",
                "shorter",
                "--source",
                "clinician-comment",
            ],
            env=env,
        ).exit_code
        == 0
    )

    own = runner.invoke(
        cli, ["knowledge", "review", "1", "--by", "dr author", "--note", "ok", "--approve"], env=env
    )
    assert own.exit_code == 1 and "someone other than its author" in own.output
    approved = runner.invoke(
        cli,
        [
            "knowledge",
            "review",
            "1",
            "--by",
            "Dr Reviewer",
            "--note",
            "effect established",
            "--approve",
        ],
        env=env,
    )
    assert approved.exit_code == 0, approved.output
    assert load_artifact(folder / "rules" / f"{RULE}.yaml").version == "1.2.0"
    assert (folder / "rules" / "archive" / f"{RULE}@{live}.yaml").exists()
    assert runner.invoke(cli, ["knowledge", "validate"], env=env).exit_code == 0
    stale = runner.invoke(
        cli,
        ["knowledge", "review", "2", "--by", "Dr Reviewer", "--note", "n", "--approve"],
        env=env,
    )
    assert stale.exit_code == 1 and "propose it again" in stale.output
    rejected = runner.invoke(
        cli,
        ["knowledge", "review", "2", "--by", "Dr Reviewer", "--note", "superseded", "--reject"],
        env=env,
    )
    assert rejected.exit_code == 0
    listing = runner.invoke(cli, ["knowledge", "proposals", RULE], env=env).output
    assert "approved" in listing and "rejected by Dr Reviewer: superseded" in listing

    # The service restarted on the new knowledge serves 1.2.0.
    app = make_app(database_url=database_url, knowledge_dir=folder)
    _serve_and_answer(app, range(100, 120), 1, "")  # every card accepted
    history = runner.invoke(cli, ["knowledge", "history", RULE], env=env)
    assert history.exit_code == 0, history.output
    out = history.output
    assert f"v{'1.2.0':<8} current" in out and f"v{live:<8} archived" in out
    assert "proposal 1 by Dr Author (experiment:lace-follow-up-wording)" in out
    assert "approved by Dr Reviewer" in out and "effect established" in out
    assert "evidence: experiment lace-follow-up-wording: +0.124" in out
    assert "measured: 20 cards shown, 20 answered, 25.0% accepted" in out
    assert "measured: 20 cards shown, 20 answered, 100.0% accepted" in out
    assert "+75.0% against the version before" in out


def _row(rule: str, outcome: str | None, code: str | None = None) -> CardRow:
    now = datetime.now(UTC)
    return CardRow(rule, "1", "h", "warning", "Practitioner", now, outcome, code, now, code, None)


def test_rules_are_ranked_by_how_surely_clinicians_override_them():
    rows = (
        [_row("often", "overridden", "not-applicable")] * 80
        + [_row("often", "accepted")] * 20
        + [_row("few", "overridden", "not-applicable")] * 3
        + [_row("rarely", "overridden", "patient-declined")] * 2
        + [_row("rarely", "accepted")] * 30
    )
    voices = rule_voices(rows)
    # 80 of 100 ranks first; 2 of 32 next; 3 of 3 is too few to rank.
    assert [v.rule_id for v in voices] == ["often", "rarely", "few"]
    assert voices[0].needs_review and not voices[1].needs_review and not voices[2].needs_review
    assert voices[0].hint and "criteria" in voices[0].hint
    assert voices[2].override_ci is None and voices[2].override_rate == 1.0

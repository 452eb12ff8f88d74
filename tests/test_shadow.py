"""Shadow mode: a candidate rule version runs silently beside the live one, nothing it
computes reaches the clinician, every comparison is stored (SQLite and PostgreSQL), and
`lhs shadow report` summarizes agreement, extra and missed cards."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import date

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from evaluation.shadow_analysis import ShadowRow, cohen_kappa, summarize
from hooks.cards import Card, Source
from hooks.requests import HookRequest
from knowledge.library import load_library
from knowledge.rule import Advice, EvaluationContext
from knowledge.shadow import Shadow, ShadowComparison
from point_of_care.catalogue import build_services
from point_of_care.examples import EXAMPLES
from point_of_care.invocation import run_service
from tests.service_app import app_factory
from tests.waiting import wait_for

runner = CliRunner()
RULE = "lace-readmission-risk"
SERVICE = "lhs-encounter-discharge"


def test_cohen_kappa_matches_the_textbook_example():
    # https://en.wikipedia.org/wiki/Cohen%27s_kappa, "Simple example": 50 proposals, both
    # readers yes 20, both no 15, A yes B no 5, A no B yes 10: p_o 0.7, p_e 0.5, kappa 0.4.
    assert cohen_kappa(both=20, neither=15, extra=10, missed=5) == pytest.approx(0.4)
    assert cohen_kappa(both=0, neither=7, extra=0, missed=0) is None  # no variation at all


def _card(summary: str, indicator: str = "warning") -> Card:
    return Card(summary=summary, indicator=indicator, source=Source(label="test"))


def test_comparisons_classify_each_call():
    def compared(live: list[Card], shadow: list[Card]) -> ShadowComparison:
        return ShadowComparison("s", RULE, "1", "2", tuple(live), tuple(shadow))

    a, b = _card("A"), _card("B")
    assert compared([a], [a]).agreement == "both" and not compared([a], [a]).changed
    assert compared([a], [b]).changed
    assert compared([a], [_card("A", "critical")]).changed
    assert compared([], [a]).agreement == "extra"
    assert compared([a], []).agreement == "missed"
    assert compared([], []).agreement == "neither"

    def row(agreement: str, live: list[Card], shadow: list[Card]) -> ShadowRow:
        dump = lambda cards: [c.model_dump(mode="json") for c in cards]  # noqa: E731
        return ShadowRow(agreement, False, dump(live), dump(shadow), f"p-{agreement}")

    critical = _card("Stop", "critical")
    summary = summarize(
        "s",
        RULE,
        "2",
        [row("both", [a], [a]), row("missed", [critical], []), row("extra", [], [b])],
        ["1", "1", ""],
    )
    assert (summary.both, summary.missed, summary.extra, summary.neither) == (1, 1, 1, 0)
    assert summary.missed_critical == 1 and summary.live_versions == ["1"]
    assert summary.top_extra == [("B", 1)] and summary.top_missed == [("Stop", 1)]
    assert summary.agreement_rate == pytest.approx(1 / 3)


class _Broken:
    id = "broken-candidate"
    version = "9.9.9"
    hooks = frozenset({"encounter-discharge"})

    def evaluate(self, ctx: EvaluationContext) -> list[Advice]:
        raise RuntimeError("candidate bug")


def test_a_failing_candidate_changes_nothing_the_clinician_sees():
    library = load_library()
    request = HookRequest.model_validate(EXAMPLES[SERVICE](date.today()))
    live = build_services(library)[SERVICE]
    shadowed = build_services(library, shadows=[Shadow("broken", RULE, _Broken())])[SERVICE]
    expected = asyncio.run(run_service(live, request))
    result = asyncio.run(run_service(shadowed, request))
    assert [a.card.summary for a in result.advice] == [a.card.summary for a in expected.advice]
    assert result.failed_recommenders == [] and result.shadows == []


def _candidate(tmp_path) -> str:
    """LACE 1.2.0 as a reviewer might propose it: high risk from 12, shorter wording."""
    live = yaml.safe_load(load_library().rule(RULE).artifact.model_dump_json())
    live["version"] = "1.2.0"
    live["thresholds"]["high_risk_min_score"] = 12
    live["cards"]["high_risk"]["summary"] = "LACE {score}: book follow-up within 7 days"
    live["changelog"].append(
        {
            "version": "1.2.0",
            "date": date.today().isoformat(),
            "change": "high risk from 12; action-first wording",
            "reason": "fewer cards for the same readmissions (to be shown in shadow mode)",
        }
    )
    path = tmp_path / "lace-candidate.yaml"
    path.write_text(yaml.safe_dump(live))
    return str(path)


def _request(patient: str, drop: str | None) -> dict:
    """The discharge example (LACE 15); without its conditions LACE 10, without its
    earlier encounters below 10."""
    request = json.loads(
        json.dumps(EXAMPLES[SERVICE](date.today())).replace("example-discharge", patient)
    )
    if drop is not None:
        request["prefetch"][drop]["entry"] = []
    return copy.deepcopy(request)


def test_a_candidate_rule_version_runs_in_shadow_and_is_reported(tmp_path, database_url):
    app = app_factory(tmp_path)(database_url=database_url, spool_drain_interval=0.1)
    settings = app.state.lhs.settings
    env = {
        "LHS_DATA_DIR": str(settings.data_dir),
        "LHS_DATABASE_URL": settings.resolved_database_url,
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }
    live_version = load_library().rule(RULE).version
    same = tmp_path / "same.yaml"
    same.write_text(load_library().rule(RULE).artifact.model_dump_json())
    refused = runner.invoke(
        cli, ["shadow", "start", "same", "--rule-file", str(same), "--by", "QI"], env=env
    )
    assert refused.exit_code == 1 and "live version" in refused.output
    started = runner.invoke(
        cli,
        ["shadow", "start", "lace-12", "--rule-file", _candidate(tmp_path), "--by", "QI board"],
        env=env,
    )
    assert started.exit_code == 0, started.output
    plan = {"full": None, "no-conditions": "conditions", "no-history": "encounters"}
    with TestClient(app) as client:
        wait_for(lambda: "lace-12" in app.state.lhs.shadows)
        for i in range(3):
            for kind, drop in plan.items():
                response = client.post(
                    f"/cds-services/{SERVICE}", json=_request(f"{kind}-{i}", drop)
                )
                assert response.status_code == 200
                summaries = [c["summary"] for c in response.json()["cards"]]
                # Only the live wording reaches the clinician.
                assert not any("book follow-up within 7 days" in s for s in summaries)
                lace = [s for s in summaries if s.startswith("High readmission risk")]
                assert bool(lace) == (kind != "no-history")
    records = app.state.lhs.store.shadow_comparisons("lace-12")
    assert len(records) == 9
    assert {r.live_version for r in records} == {live_version}
    assert {r.candidate_version for r in records} == {"1.2.0"}

    reported = runner.invoke(cli, ["shadow", "report", "lace-12", "--json"], env=env)
    assert reported.exit_code == 0, reported.output
    summary = json.loads(reported.output)
    # LACE 15: both show, in other words; LACE 10: only the live rule (from 10) shows;
    # below 10: neither.
    assert (summary["both"], summary["missed"], summary["neither"], summary["extra"]) == (
        3,
        3,
        3,
        0,
    )
    assert summary["changed"] == 3 and summary["patients"] == 9
    assert summary["agreement_rate"] == pytest.approx(6 / 9)
    assert summary["top_missed"][0][1] == 3 and "LACE index 10" in summary["top_missed"][0][0]
    assert summary["missed_critical"] == 0
    text = runner.invoke(cli, ["shadow", "report", "lace-12"], env=env).output
    assert "agreement 66.7%" in text and "missed 3" in text

    assert runner.invoke(cli, ["shadow", "stop", "lace-12"], env=env).exit_code == 0
    listing = runner.invoke(cli, ["shadow", "list"], env=env).output
    assert "lace-12  stopped  rule lace-readmission-risk 1.2.0" in listing

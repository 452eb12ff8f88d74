"""Site settings of rules: bounded, audited, applied to running services, never silencing critical advice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from knowledge.library import load_library
from point_of_care.examples import EXAMPLES
from point_of_care.site_settings import SettingRejected, audit_trail, configure_rule
from tests.service_app import app_factory
from tests.waiting import wait_for

TODAY = date.today()


@pytest.fixture
def app(tmp_path):
    return app_factory(tmp_path)(spool_drain_interval=0.1)


def _rules(response):
    return {c["source"]["topic"]["code"] for c in response.json()["cards"]}


def test_a_rule_can_be_switched_off_and_on_with_an_audit_trail(app):
    engine = app.state.lhs.store.engine
    with TestClient(app) as client:
        assert "statin-primary-prevention" in _rules(
            client.post("/cds-services/lhs-patient-view", json=EXAMPLES["lhs-patient-view"](TODAY))
        )
        configure_rule(
            engine,
            load_library(),
            "statin-primary-prevention",
            enabled=False,
            changed_by="Dr Informatician",
            reason="Pilot of the new lipid pathway",
        )
        wait_for(
            lambda: (
                not any(
                    r.id == "statin-primary-prevention"
                    for r in app.state.lhs.services["lhs-patient-view"].recommenders
                )
            )
        )
        assert "statin-primary-prevention" not in _rules(
            client.post("/cds-services/lhs-patient-view", json=EXAMPLES["lhs-patient-view"](TODAY))
        )
        configure_rule(
            engine,
            load_library(),
            "statin-primary-prevention",
            enabled=True,
            changed_by="Dr Informatician",
            reason="Pilot ended",
        )
        wait_for(
            lambda: any(
                r.id == "statin-primary-prevention"
                for r in app.state.lhs.services["lhs-patient-view"].recommenders
            )
        )
    trail = audit_trail(engine, "statin-primary-prevention")
    assert [(c.before.get("enabled"), c.after["enabled"]) for c in trail] == [
        (None, False),
        (False, True),
    ]
    assert all(c.changed_by == "Dr Informatician" and c.reason for c in trail)


def test_rules_that_can_be_critical_cannot_be_switched_off(app):
    with pytest.raises(SettingRejected, match="critical"):
        configure_rule(
            app.state.lhs.store.engine,
            load_library(),
            "metformin-renal-contraindication",
            enabled=False,
            changed_by="x",
            reason="y",
        )
    assert audit_trail(app.state.lhs.store.engine) == []


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"creatinine_lookback_days": 30}, "between 90 and 730"),
        ({"contraindicated_below_egfr": 20}, "not site-adjustable"),
    ],
)
def test_thresholds_move_only_within_the_artifacts_bounds(app, thresholds, message):
    with pytest.raises(SettingRejected, match=message):
        configure_rule(
            app.state.lhs.store.engine,
            load_library(),
            "metformin-renal-contraindication",
            thresholds=thresholds,
            changed_by="x",
            reason="y",
        )


def test_a_site_threshold_changes_what_the_rule_does(app):
    """A creatinine 200 days old counts with the default 365-day lookback, not with 180 days."""
    request = EXAMPLES["lhs-order-sign"](TODAY)
    creatinine = request["prefetch"]["observations"]["entry"][0]["resource"]
    creatinine["effectiveDateTime"] = (TODAY - timedelta(days=200)).isoformat()
    with TestClient(app) as client:
        before = client.post("/cds-services/lhs-order-sign", json=request).json()["cards"]
        assert any(c["indicator"] == "critical" for c in before)
        configure_rule(
            app.state.lhs.store.engine,
            load_library(),
            "metformin-renal-contraindication",
            thresholds={"creatinine_lookback_days": 180},
            changed_by="Renal team",
            reason="Local policy",
        )
        wait_for(lambda: "metformin-renal-contraindication" in app.state.lhs.rule_settings)
        after = client.post("/cds-services/lhs-order-sign", json=request).json()["cards"]
        assert not any(c["indicator"] == "critical" for c in after)
        assert any(
            c["source"]["topic"]["code"] == "metformin-renal-contraindication" for c in after
        ), "without a recent creatinine the rule asks for one instead"


def test_configure_cli(tmp_path, monkeypatch):
    app_factory(tmp_path)()  # migrates the database
    monkeypatch.setenv("LHS_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    ok = runner.invoke(
        cli,
        [
            "knowledge",
            "configure",
            "statin-primary-prevention",
            "--threshold",
            "lookback_days=730",
            "--suppress-days",
            "60",
            "--by",
            "QI lead",
            "--reason",
            "fresher lipids",
        ],
    )
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(
        cli,
        ["knowledge", "configure", "ddi-statin-cyp3a4", "--disable", "--by", "a", "--reason", "b"],
    )
    assert refused.exit_code == 2 and "critical" in refused.output
    shown = runner.invoke(cli, ["knowledge", "settings"])
    assert "QI lead" in shown.output and "lookback_days" in shown.output

"""Population surveillance: cases counted per syndrome, Safe Harbor area and ILINet age band
from the live feed; small numbers suppressed; EARS signals raised once for an area whose
cases jump, through the CLI and the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, time, timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds_service.analytics_cli import gather_report
from cds_service.cli import app as cli
from cds_service.examples import EXAMPLES
from cds_service.storage.tables import SurveillanceSignal
from evaluation.report import render_report
from evaluation.surveillance_report import SignalSeries, series_plot
from evaluation.syndromic import (
    CountKey,
    FeedEvent,
    Resident,
    age_band,
    area_series,
    daily_counts,
    suppress,
)
from knowledge.library import KNOWLEDGE_DIR
from knowledge.syndromes import load_syndromes
from tests.service_app import app_factory
from tests.waiting import wait_for

runner = CliRunner()
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
TODAY = date(2026, 3, 31)


def test_cases_are_patients_per_syndrome_area_age_band_and_day():
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    day = date(2026, 1, 5)
    events = [
        FeedEvent("a", day, "Condition", [f"{SNOMED}|6142004"]),
        FeedEvent("a", day, "Condition", [f"{SNOMED}|95891005"]),  # the same patient again
        FeedEvent("b", day, "Observation", [f"{LOINC}|94500-6"], [f"{SNOMED}|260373001"]),
        FeedEvent("c", day, "Observation", [f"{LOINC}|94500-6"], [f"{SNOMED}|260385009"]),
        FeedEvent("d", day, "Condition", [f"{SNOMED}|444814009"]),  # sinusitis: no syndrome
    ]
    residents = {"a": Resident("021", 1950), "b": Resident("021", 2024)}
    counts = daily_counts(events, residents, syndromes)
    # a: influenza, 76 in 2026 -> 65+; b: positive SARS-CoV-2 test, 2 -> 0-4; c: negative.
    assert counts == {
        CountKey("covid-19", "021", "0-4", day): 1,
        CountKey("influenza-like-illness", "021", "65+", day): 1,
    }
    assert [age_band(y, day) for y in (2026, 2022, 2021, 2001, 1977, 1976, 1962, 1961)] == [
        "0-4", "0-4", "5-24", "25-49", "25-49", "50-64", "50-64", "65+",
    ]  # fmt: skip
    assert age_band(None, day) == "unknown"
    assert area_series(counts, day - timedelta(days=1), day) == {
        ("covid-19", "021"): [0, 1],
        ("influenza-like-illness", "021"): [0, 1],
    }
    # CMS cell size suppression: 1 to 10 never shown, 0 and 11 up are.
    assert [suppress(n) for n in (0, 1, 10, 11, 250)] == [0, None, None, 11, 250]


def _patient(pid: str, zip_code: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "birthDate": "1980-02-02",
        "address": [{"use": "home", "postalCode": zip_code}],
    }


def _ili(pid: str, day: date) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"ili-{pid}-{day}",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SNOMED, "code": "95891005"}]},
        "onsetDateTime": f"{day}T10:00:00Z",
    }


def test_an_area_whose_cases_jump_raises_a_signal_once(tmp_path, database_url):
    app = app_factory(tmp_path)(database_url=database_url)
    env = {
        "LHS_DATA_DIR": str(tmp_path),
        "LHS_DATABASE_URL": app.state.lhs.settings.resolved_database_url,
        "LHS_PSEUDONYM_KEY": "test-secret",
    }
    # Area 021: 14 and 16 cases on alternate days for 29 days, then 40 today. Area 100: the
    # same without the jump. Area 303: 3 a day (shown only as <11).
    areas = {"021": "02139", "100": "10001", "303": "30301"}
    days = [TODAY - timedelta(days=i) for i in range(29, -1, -1)]
    usual = {day: 14 if i % 2 else 16 for i, day in enumerate(days)}
    wanted = {
        "021": {**usual, TODAY: 40},
        "100": usual,
        "303": dict.fromkeys(days, 3),
    }
    resources = []
    for area, per_day in wanted.items():
        for day, n in per_day.items():
            for i in range(n):
                pid = f"{area}-{day}-{i}"
                resources += [_patient(pid, areas[area]), _ili(pid, day)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    with TestClient(app) as client:
        for start in range(0, len(resources), 1000):
            bundle["entry"] = [{"resource": r} for r in resources[start : start + 1000]]
            assert client.post("/outcomes", json=bundle).status_code == 200

        detected = runner.invoke(cli, ["surveillance", "detect", "--today", str(TODAY)], env=env)
        assert detected.exit_code == 0, detected.output
        signals = client.get("/surveillance/signals", params={"days": 3650}).json()["signals"]
    # C1 on today: baseline the 7 days before, alternating 14 and 16 around 15.
    baseline = [usual[TODAY - timedelta(days=d)] for d in range(7, 0, -1)]
    c1 = (40 - statistics.mean(baseline)) / statistics.stdev(baseline)
    assert c1 > 3
    assert {(s["area"], s["day"]) for s in signals} == {("021", str(TODAY))}
    by_method = {s["method"]: s for s in signals}
    assert set(by_method) == {"ears-c1", "ears-c2", "ears-c3"}
    assert abs(by_method["ears-c1"]["strength"] - c1) < 1e-9
    assert by_method["ears-c1"]["observed"] == 40
    assert by_method["ears-c1"]["expected"] == round(statistics.mean(baseline), 2)
    # Only today alarms, by each method: three signals, all new.
    assert len(signals) == 3 and "3 new signals" in detected.output

    again = runner.invoke(cli, ["surveillance", "detect", "--today", str(TODAY)], env=env)
    assert "0 new signals" in again.output  # raised once
    listed = runner.invoke(cli, ["surveillance", "signals", "--days", "3650"], env=env).output
    assert "influenza-like-illness" in listed and "area 021" in listed
    table = runner.invoke(
        cli,
        ["surveillance", "counts", "influenza-like-illness", "--today", str(TODAY), "--days", "3"],
        env=env,
    ).output
    header, *rows = table.splitlines()
    assert header.split() == ["day", "021", "100", "303"]
    assert rows[-1].split() == [str(TODAY), "40", "14" if 29 % 2 else "16", "<11"]

    # The learning report lists the signal and plots area 021's cases against the baseline.
    start = datetime.combine(TODAY - timedelta(days=30), time(), tzinfo=UTC)
    page = render_report(gather_report(app.state.lhs.store, start, start + timedelta(days=31)))
    section = page.split("<h2>Population surveillance</h2>")[1]
    assert f"<td>{TODAY}</td><td>influenza-like-illness</td><td>021</td>" in section
    assert "ears-c1, ears-c2, ears-c3" in section
    assert section.count("data:image/png;base64,") == 1  # one area with a signal


def _patient_view(patient_id: str, zip_code: str, diagnosed: date | None) -> dict:
    request = json.loads(
        json.dumps(EXAMPLES["lhs-patient-view"](TODAY)).replace("example-statin", patient_id)
    )
    request["prefetch"]["patient"]["address"] = [{"use": "home", "postalCode": zip_code}]
    if diagnosed is not None:
        illness = _ili(patient_id, diagnosed)
        illness["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        }
        request["prefetch"]["conditions"]["entry"].append({"resource": illness})
    return request


def test_a_signal_reaches_clinicians_seeing_ill_patients_from_that_area(tmp_path):
    app = app_factory(tmp_path)(
        spool_drain_interval=0.1,
        evaluation_time=datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC),
    )
    store = app.state.lhs.store
    store.record_signals(
        [
            SurveillanceSignal(
                syndrome="influenza-like-illness",
                area="021",
                day=TODAY - timedelta(days=1),
                method=method,
                observed=40,
                expected=15,
                threshold=18,
                strength=20,
            )
            for method in ("ears-c1", "ears-c2")
        ]
    )

    def outbreak_cards(request: dict) -> list[dict]:
        cards = client.post("/cds-services/lhs-patient-view", json=request).json()["cards"]
        return [c for c in cards if c["source"]["topic"]["code"] == "outbreak-signal"]

    with TestClient(app) as client:
        wait_for(lambda: len(app.state.lhs.signals) == 2)
        (card,) = outbreak_cards(_patient_view("ill-here", "02139", TODAY - timedelta(days=2)))
        assert card["indicator"] == "info"
        assert card["summary"].startswith("Influenza-like illness and influenza is rising")
        assert "ZIP3 021" in card["detail"] and "ears-c1, ears-c2" in card["detail"]
        assert "40" not in card["summary"] and "observed" not in card["detail"]  # no counts
        # Elsewhere, without the diagnosis, or with an old one: no card.
        assert outbreak_cards(_patient_view("ill-elsewhere", "10001", TODAY)) == []
        assert outbreak_cards(_patient_view("well-here", "02139", None)) == []
        assert (
            outbreak_cards(_patient_view("ill-long-ago", "02139", TODAY - timedelta(days=30))) == []
        )
        # The card is tracked like every card: feedback on it is stored.
        feedback = {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
            "overrideReason": {"reason": card["overrideReasons"][1]},
        }
        stored = client.post(
            "/cds-services/lhs-patient-view/feedback", json={"feedback": [feedback]}
        )
        assert stored.status_code == 200
    rows = store.card_feedback_rows(
        datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC), "outbreak-signal"
    )
    assert [(r.outcome, r.rule_version) for r in rows] == [("overridden", "1.0.0")]


def test_the_report_plot_never_draws_a_small_count():
    series = SignalSeries("influenza-like-illness", "021", TODAY, [0, 3, 12, 5, 40], [], [TODAY])
    axes = series_plot(series).axes[0]
    assert sorted(bar.get_height() for bar in axes.patches) == [0, 12, 40]
    (suppressed,) = axes.collections  # the days with 3 and 5 cases, drawn as suppressed
    assert len(suppressed.get_offsets()) == 2
    assert {tuple(point)[1] for point in suppressed.get_offsets()} == {5.5}  # MIN_CELL / 2

"""Population surveillance: cases counted per syndrome, Safe Harbor area and ILINet age band
from the live feed; small numbers suppressed; EARS signals raised once for an area whose
cases jump, through the CLI and the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from fastapi.testclient import TestClient
from fhir.resources.R4B.servicerequest import ServiceRequest
from typer.testing import CliRunner

from cli.analytics import gather_report
from cli.main import app as cli
from evaluation.report import render_report
from evaluation.surveillance_report import SignalSeries, series_plot
from evaluation.syndromic import CountKey, age_band, area_series, cells, suppress
from fhir_client.outcomes import parse_outcomes
from knowledge.library import KNOWLEDGE_DIR
from knowledge.syndromes import load_syndromes
from learning.surveillance import FARRINGTON_WEEKS, DetectionRun, detect
from point_of_care.examples import EXAMPLES
from storage.repository import Store
from storage.tables import SurveillanceSignal
from tests.service_app import app_factory
from tests.waiting import wait_for

runner = CliRunner()
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
TODAY = date(2026, 3, 31)


def _fed(store: Store, *resources: dict) -> None:
    """Store resources as the outcomes endpoint does."""
    parsed = parse_outcomes(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        },
        b"test-pseudonym-key-of-32-characters",
        None,
    )
    assert parsed.errors == []
    store.record_outcomes(parsed.items)


def _resident(pid: str, zip_code: str, born: int) -> dict:
    return _patient(pid, zip_code) | {"birthDate": f"{born}-06-01"}


def _test_result(pid: str, day: date, loinc: str, result: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"test-{pid}-{day}",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": result}]},
        "effectiveDateTime": f"{day}T09:00:00Z",
    }


def test_cases_are_patients_per_syndrome_area_age_band_and_day(store):
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    day = date(2026, 1, 5)
    influenza = _ili("a", day) | {
        "id": "flu-a",
        "code": {"coding": [{"system": SNOMED, "code": "6142004"}]},
    }
    _fed(
        store,
        _resident("a", "02139", 1950),
        _resident("b", "02140", 2024),
        _ili("a", day),
        influenza,  # the same patient again on the same day
        _test_result("b", day, "94500-6", "260373001"),  # SARS-CoV-2 RNA detected
        _test_result("c", day, "94500-6", "260385009"),  # not detected: no case
        _ili("d", day) | {"code": {"coding": [{"system": SNOMED, "code": "444814009"}]}},
    )
    detect(store, syndromes, day)
    counts = cells(store.surveillance.case_counts(day, day, by_birth_year=True))
    # a: influenza, 76 in 2026 -> 65+; b: positive SARS-CoV-2 test, 2 -> 0-4; c: negative;
    # d: sinusitis, no syndrome.
    assert counts == {
        CountKey("covid-19", "021", "0-4", day): 1,
        CountKey("influenza-like-illness", "021", "65+", day): 1,
    }
    assert [age_band(y, day) for y in (2026, 2022, 2021, 2001, 1977, 1976, 1962, 1961)] == [
        "0-4", "0-4", "5-24", "25-49", "25-49", "50-64", "50-64", "65+",
    ]  # fmt: skip
    assert age_band(None, day) == "unknown"
    assert area_series(store.surveillance.case_counts(day, day), day - timedelta(days=1), day) == {
        ("covid-19", "021"): [0, 1],
        ("influenza-like-illness", "021"): [0, 1],
    }
    # CMS cell size suppression: 1 to 10 never shown, 0 and 11 up are.
    assert [suppress(n) for n in (0, 1, 10, 11, 250)] == [0, None, None, 11, 250]


def test_runs_classify_only_what_arrived_and_evaluate_only_the_series_it_touches(store):
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    day = TODAY
    _fed(store, _resident("a", "02139", 1980), _resident("b", "10001", 1980), _ili("a", day))

    def run(today: date = day, definitions: dict = syndromes) -> DetectionRun:
        # No overlap: what arrived before the previous run started is not read again.
        return detect(store, definitions, today, incremental=True, arrival_overlap=timedelta(0))

    first = run()
    assert (first.incremental, first.classified) == (False, 1)  # the first run is a full one
    assert {(s.syndrome, s.area) for s in first.series} == {("influenza-like-illness", "021")}

    # Patient b's case arrives, and patient c's before their Patient resource does.
    _fed(store, _ili("b", day), _ili("c", day))
    second = run()
    assert (second.incremental, second.classified) == (True, 2)
    assert {s.area for s in second.series} == {"100", "unknown"}
    _fed(store, _resident("c", "02139", 1990))
    third = run()
    assert third.classified == 0
    (area_021,) = third.series  # c now counts in 021, and ...
    assert (area_021.area, area_021.counts[-1]) == ("021", 2)
    # ... 'unknown' lost its only case, which a full run shows.
    full = detect(store, syndromes, day)
    assert {s.area: s.counts[-1] for s in full.series} == {"021": 2, "100": 1}

    # A correction that makes a case no case removes it.
    _fed(store, _ili("b", day) | {"code": {"coding": [{"system": SNOMED, "code": "444814009"}]}})
    assert run().classified == 1
    assert area_series(store.surveillance.case_counts(day, day), day, day) == {
        ("influenza-like-illness", "021"): [2]
    }

    # Changed definitions classify the whole feed again; a new day is a full run.
    narrower = {
        "influenza-like-illness": syndromes["influenza-like-illness"].model_copy(
            update={"conditions": syndromes["influenza-like-illness"].conditions[1:]}
        )
    }
    reclassified = run(definitions=narrower)
    assert (reclassified.incremental, reclassified.classified, reclassified.series) == (
        False,
        3,
        [],
    )
    assert run(definitions=narrower).incremental
    assert not run(day + timedelta(days=1), narrower).incremental
    runs = store.surveillance.last_run()
    assert runs is not None and runs.through_day == day + timedelta(days=1)


def test_farrington_runs_on_weekly_counts_once_five_years_of_history_are_in(store):
    syndromes = load_syndromes(KNOWLEDGE_DIR)
    today = date(2026, 3, 31)  # a Tuesday: the last complete week ends on Sunday 29 March
    week_end = date(2026, 3, 29)
    rng = np.random.default_rng(7)
    resources = []
    for week in range(FARRINGTON_WEEKS):
        end = week_end - timedelta(weeks=week)
        # A steady 4 cases a week for five years, and 30 in the latest week.
        for i in range(30 if week == 0 else int(rng.poisson(4))):
            pid = f"w{week}-{i}"
            resources += [_resident(pid, "02139", 1980), _ili(pid, end - timedelta(days=i % 7))]
    _fed(store, *resources)
    run = detect(store, syndromes, today)
    (weekly,) = run.weekly
    assert (weekly.syndrome, weekly.area, len(weekly.counts)) == (
        "influenza-like-illness", "021", FARRINGTON_WEEKS,
    )  # fmt: skip
    assert weekly.counts[-1] == 30
    (alarm,) = weekly.alarms["farrington-flexible"]
    assert alarm.alarm and 3 < alarm.expected < 5 and alarm.threshold < 30
    raised = [s for s in run.raised if s.method == "farrington-flexible"]
    assert [(s.area, s.day, s.observed) for s in raised] == [("021", week_end, 30)]

    # With less history than the method needs, the weekly series is not evaluated.
    short = date(2026, 3, 31) - timedelta(weeks=FARRINGTON_WEEKS - 10)
    assert detect(store, syndromes, short).weekly == []


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
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
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
    as_of, header, *rows = table.splitlines()
    assert as_of.startswith("as classified by the detection run of 20")
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
    store.surveillance.record_signals(
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
            for method in ("ears-c1", "ears-c2", "farrington-flexible")
        ]
        # Area 100: an exceedance on 7 cases, fewer than may be shown.
        + [
            SurveillanceSignal(
                syndrome="influenza-like-illness",
                area="100",
                day=TODAY - timedelta(days=1),
                method="ears-c3",
                observed=7,
                expected=2,
                threshold=5,
                strength=3,
            )
        ]
    )

    def outbreak_cards(request: dict) -> list[dict]:
        cards = client.post("/cds-services/lhs-patient-view", json=request).json()["cards"]
        return [c for c in cards if c["source"]["topic"]["code"] == "outbreak-signal"]

    with TestClient(app) as client:
        wait_for(lambda: len(app.state.lhs.signals) == 3)
        (card,) = outbreak_cards(_patient_view("ill-here", "02139", TODAY - timedelta(days=2)))
        assert card["indicator"] == "info"
        assert card["summary"].startswith("Influenza-like illness and influenza is rising")
        assert "ZIP3 021" in card["detail"]
        assert "ears-c1, ears-c2, farrington-flexible" in card["detail"]
        # The card proposes the confirmatory tests of the syndrome's definition.
        (testing,) = card["suggestions"]
        assert testing["label"] == "Order influenza A and B RNA tests (rapid molecular assay)"
        orders = [action["resource"] for action in testing["actions"]]
        assert [o["code"]["coding"][0]["code"] for o in orders] == ["92142-9", "92141-1"]
        assert {(o["status"], o["subject"]["reference"]) for o in orders} == {
            ("draft", "Patient/ill-here")
        }
        for order in orders:
            ServiceRequest.model_validate(order)
        assert "40" not in card["summary"] and "observed" not in card["detail"]  # no counts
        # Elsewhere (area 100's signal is on too few cases to reach a card), without the
        # diagnosis, or with an old one: no card.
        assert outbreak_cards(_patient_view("ill-elsewhere", "10001", TODAY)) == []
        assert outbreak_cards(_patient_view("well-here", "02139", None)) == []
        assert (
            outbreak_cards(_patient_view("ill-long-ago", "02139", TODAY - timedelta(days=30))) == []
        )
        # The card is tracked like every card: feedback on it is stored.
        feedback = {
            "card": card["uuid"],
            "outcome": "accepted",
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
            "acceptedSuggestions": [{"id": testing["uuid"]}],
        }
        stored = client.post(
            "/cds-services/lhs-patient-view/feedback", json={"feedback": [feedback]}
        )
        assert stored.status_code == 200
    rows = store.card_feedback_rows(
        datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC), "outbreak-signal"
    )
    assert [(r.outcome, r.rule_version) for r in rows] == [("accepted", "1.1.0")]


def test_the_report_plot_never_draws_a_small_count():
    series = SignalSeries("influenza-like-illness", "021", TODAY, [0, 3, 12, 5, 40], [], [TODAY])
    axes = series_plot(series).axes[0]
    assert sorted(bar.get_height() for bar in axes.patches) == [0, 12, 40]
    (suppressed,) = axes.collections  # the days with 3 and 5 cases, drawn as suppressed
    assert len(suppressed.get_offsets()) == 2
    assert {tuple(point)[1] for point in suppressed.get_offsets()} == {5.5}  # MIN_CELL / 2


def test_the_api_says_null_for_values_that_are_not_finite(tmp_path, database_url):
    # EARS C3 whose earlier days already alarm (any count alarms) over a silent baseline
    # (infinitely many standard deviations): stored as such on both databases.
    app = app_factory(tmp_path)(database_url=database_url)
    app.state.lhs.store.surveillance.record_signals(
        [
            SurveillanceSignal(
                syndrome="influenza-like-illness",
                area="021",
                day=datetime.now(UTC).date(),
                method=method,
                observed=12,
                expected=expected,
                threshold=threshold,
                strength=strength,
            )
            for method, expected, threshold, strength in (
                ("ears-c3", 0, -math.inf, math.inf),
                ("ears-c2", 1.234, 3.14159, 3.8),
            )
        ]
    )
    with TestClient(app) as client:
        response = client.get("/surveillance/signals", params={"days": 1})
    assert response.status_code == 200
    values = {
        s["method"]: (s["expected"], s["threshold"], s["strength"])
        for s in response.json()["signals"]
    }
    assert values == {"ears-c3": (0, None, None), "ears-c2": (1.23, 3.14, 3.8)}

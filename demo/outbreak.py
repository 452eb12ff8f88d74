"""The outbreak scenario of the simulated clinic (``make demo DEMO_ARGS=--outbreak``).

Five and a half years of influenza-like illness in four ZIP3 areas (seasonal, winter peaks)
arrive through the outcomes endpoint as Patient and Condition resources, and in the last
days an outbreak is injected in one area. The running service's own background detection
(every LHS_SURVEILLANCE_INTERVAL_SECONDS) classifies the feed, raises the signal, and
hands it to the patient-view rules; clinicians then see ill patients from every area and
well ones from the outbreak area, and the simulated clinicians order the suggested tests
for most cards. Printed: the signals, where the plot and report are, which patients got the
card, and its acceptance as the store records it.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench.bench import TokenMinter
from cli.analytics import gather_report
from demo.feedback import feedback_item
from evaluation.report import render_report
from evaluation.surveillance_report import SignalSeries, series_plot
from evaluation.syndromic import MIN_CELL, suppress
from learning.surveillance import LOOKBACK_DAYS, daily_series
from point_of_care.examples import EXAMPLES
from storage.repository import Store

SERVICE = "lhs-patient-view"
RULE = "outbreak-signal"
SYNDROME = "influenza-like-illness"
SNOMED = "http://snomed.info/sct"
ILI = {"system": SNOMED, "code": "95891005", "display": "Influenza-like illness"}
AREAS = {"021": "02139", "100": "10001", "303": "30301", "606": "60601"}
OUTBREAK_AREA = "021"
HISTORY_DAYS = 2_010
"""Five and a half years: the Farrington method needs five years of weekly history."""
BASELINE_PER_DAY = 1.5
SEASONAL_PER_DAY = 4.0
"""Daily ILI cases per area: BASELINE + SEASONAL x (winter peak in late January)."""
OUTBREAK_EXTRA = (6, 12, 20, 30, 40)
"""Extra cases in the outbreak area on the last five days (today last)."""
ACCEPTANCE = 0.7
"""How often the simulated clinicians order the suggested tests."""


@dataclass
class Visits:
    seen: int = 0
    cards: int = 0
    accepted: int = 0


def _expected(day: date) -> float:
    peak = date(day.year, 1, 25)
    phase = 2 * math.pi * (day - peak).days / 365.25
    return BASELINE_PER_DAY + SEASONAL_PER_DAY * max(0.0, math.cos(phase)) ** 2


def _patient(pid: str, zip_code: str, rng: random.Random) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "birthDate": f"{rng.randrange(1935, 2024)}-0{rng.randrange(1, 10)}-15",
        "address": [{"use": "home", "postalCode": zip_code}],
    }


def _illness(pid: str, day: date, rng: random.Random) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"ili-{pid}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [ILI]},
        "onsetDateTime": f"{day}T{rng.randrange(8, 18):02d}:00:00Z",
    }


def feed(today: date, rng: random.Random) -> tuple[list[dict], int]:
    """The feed's resources, oldest first, and how many outbreak cases were injected."""
    counts = np.random.default_rng(rng.randrange(2**32))
    resources: list[dict] = []
    injected = 0
    for offset in range(HISTORY_DAYS, -1, -1):
        day = today - timedelta(days=offset)
        for area, zip_code in AREAS.items():
            cases = int(counts.poisson(_expected(day)))
            if area == OUTBREAK_AREA and offset < len(OUTBREAK_EXTRA):
                extra = OUTBREAK_EXTRA[len(OUTBREAK_EXTRA) - 1 - offset]
                cases += extra
                injected += extra
            for i in range(cases):
                pid = f"{area}-{day:%Y%m%d}-{i}"
                resources += [_patient(pid, zip_code, rng), _illness(pid, day, rng)]
    return resources, injected


def _visit_request(pid: str, zip_code: str, ill_since: date | None, today: date) -> dict:
    """The patient-view example (a 60-year-old smoker) as another patient from the area."""
    example = EXAMPLES[SERVICE](today)
    request = json.loads(json.dumps(example).replace(example["context"]["patientId"], pid))
    request["prefetch"]["patient"]["address"] = [{"use": "home", "postalCode": zip_code}]
    if ill_since is not None:
        illness = _illness(pid, ill_since, random.Random(pid))
        request["prefetch"]["conditions"]["entry"].append({"resource": illness})
    return request


def run(
    url: str,
    minter: TokenMinter,
    store: Store,
    data_dir: Path,
    seed: int,
    say: Callable[[str], None],
) -> None:
    rng = random.Random(seed)
    http = httpx.Client(timeout=60)

    def post(path: str, body: dict) -> dict:
        headers = {"Authorization": f"Bearer {minter.mint(url + path)}"}
        response = http.post(url + path, json=body, headers=headers)
        response.raise_for_status()
        return response.json()

    today = datetime.now(UTC).date()
    resources, injected = feed(today, rng)
    say(
        f"feeding {len(resources) // 2:,} ILI diagnoses over {HISTORY_DAYS} days in areas "
        f"{', '.join(AREAS)} through POST /outcomes; {injected} of them an outbreak injected in "
        f"area {OUTBREAK_AREA} over the last {len(OUTBREAK_EXTRA)} days"
    )
    for start in range(0, len(resources), 2_000):
        entries = [{"resource": r} for r in resources[start : start + 2_000]]
        post("/outcomes", {"resourceType": "Bundle", "type": "collection", "entry": entries})

    outbreak_start = today - timedelta(days=len(OUTBREAK_EXTRA) - 1)

    def injected(signal: dict) -> bool:
        """A signal of the outbreak: in its area, on a day of it or (a weekly signal's day
        being the week's end) for a week that holds one."""
        day = date.fromisoformat(signal["day"])
        return signal["area"] == OUTBREAK_AREA and day >= outbreak_start

    say("waiting for the service's background detection to raise a signal ...")
    deadline = time.monotonic() + 180
    signals: list[dict] = []
    while time.monotonic() < deadline:
        path = "/surveillance/signals"
        headers = {"Authorization": f"Bearer {minter.mint(url + path)}"}
        signals = http.get(url + path, params={"days": 7}, headers=headers).json()["signals"]
        if any(injected(s) for s in signals):
            break
        time.sleep(1)
    else:
        raise SystemExit(f"no signal of the outbreak in area {OUTBREAK_AREA} within 3 minutes")
    say(f"signals of the last 7 days ({len(signals)}):")
    for s in signals:
        observed = f"<{MIN_CELL}" if s["observed_suppressed"] else s["observed"]
        truth = "the injected outbreak" if injected(s) else "background: a false alarm"
        expected, threshold = (
            "-" if s[key] is None else f"{s[key]:.2f}" for key in ("expected", "threshold")
        )
        say(
            f"  {s['day']}  {s['syndrome']}  area {s['area']}  {s['method']:<19} observed "
            f"{observed:>4}  expected {expected:>6}  threshold {threshold:>6}   ({truth})"
        )

    (series,) = [
        s
        for s in daily_series(
            store.surveillance, [SYNDROME], today - timedelta(days=LOOKBACK_DAYS), today
        )
        if s.area == OUTBREAK_AREA
    ]
    days = sorted({date.fromisoformat(s["day"]) for s in signals if s["area"] == OUTBREAK_AREA})
    plot = data_dir / f"outbreak-{OUTBREAK_AREA}.png"
    series_plot(
        SignalSeries(
            SYNDROME, OUTBREAK_AREA, series.first, series.counts, series.alarms["ears-c2"], days
        )
    ).savefig(plot)
    last_week = ", ".join(
        f"<{MIN_CELL}" if suppress(n) is None else str(n) for n in series.counts[-7:]
    )
    say(f"area {OUTBREAK_AREA}, cases of the last 7 days: {last_week}; plot: {plot}")

    # Signals reach the rules at the service's next knowledge refresh.
    time.sleep(3)
    groups = {
        f"ill, from the outbreak area {OUTBREAK_AREA}": (AREAS[OUTBREAK_AREA], True),
        f"well, from area {OUTBREAK_AREA}": (AREAS[OUTBREAK_AREA], False),
        **{f"ill, from area {a}": (AREAS[a], True) for a in AREAS if a != OUTBREAK_AREA},
    }
    visits = {name: Visits() for name in groups}
    example_card: dict | None = None
    for number in range(40):
        for name, (zip_code, ill) in groups.items():
            pid = f"visit-{zip_code}-{ill}-{number}"
            ill_since = today - timedelta(days=rng.randrange(1, 4)) if ill else None
            cards = post(
                f"/cds-services/{SERVICE}", _visit_request(pid, zip_code, ill_since, today)
            )["cards"]
            visits[name].seen += 1
            for card in cards:
                if card["source"]["topic"]["code"] != RULE:
                    continue
                example_card = example_card or card
                visits[name].cards += 1
                accepted = rng.random() < ACCEPTANCE
                visits[name].accepted += accepted
                item = feedback_item(card, accepted)
                post(f"/cds-services/{SERVICE}/feedback", {"feedback": [item]})
    if example_card is not None:
        say(f"the card: [{example_card['indicator']}] {example_card['summary']}")
        say(f"  suggestion: {example_card['suggestions'][0]['label']}")
    say("patient-view visits and the outbreak card:")
    for name, v in visits.items():
        say(f"  {name:<34} {v.seen} patients, {v.cards} cards, {v.accepted} accepted")
    rows = store.card_feedback_rows(
        datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1), RULE
    )
    answered = [r for r in rows if r.outcome is not None]
    accepted = sum(r.outcome == "accepted" for r in answered)
    say(
        f"stored: {len(rows)} {RULE} cards shown, {len(answered)} answered, "
        f"{accepted / max(len(answered), 1):.0%} accepted (as lhs analytics reports it)"
    )
    now = datetime.now(UTC)
    report = data_dir / "learning-report.html"
    report.write_text(
        render_report(gather_report(store, now - timedelta(days=7), now + timedelta(minutes=1))),
        encoding="utf-8",
    )
    say(f"the learning report with its population surveillance section: {report}")

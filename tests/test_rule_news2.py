"""NEWS2 (RCP 2017): the calculator at every Chart 1 band edge and Chart 2 threshold, and the
news2-early-warning rule end to end on constructed FHIR Observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from fhir_client.codes import ICD10CM, LOINC, SNOMED
from fhir_client.record import PatientRecord
from hooks.context import PatientViewContext
from knowledge.calculators.news2 import (
    RecordedVitals,
    VitalSigns,
    news2,
    partial_news2,
)
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, EvaluationContext, Rule
from point_of_care.catalogue import build_services
from tests.test_calculators import NORMAL
from tests.test_rules import AS_OF, PID, USER, _assert_valid, condition, patient, quantity

RULE = "news2-early-warning"


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


# --- calculator: RCP 2017 Chart 1 -----------------------------------------------------------


def _points(parameter: str, **changes: Any) -> int:
    return news2(replace(NORMAL, **changes)).points[parameter]


# Each band of Chart 1 at both of its edges, as (value, points).
CHART_1 = {
    # <=8: 3 | 9-11: 1 | 12-20: 0 | 21-24: 2 | >=25: 3
    "respiration_rate": [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
    # scale 1: <=91: 3 | 92-93: 2 | 94-95: 1 | >=96: 0
    "spo2": [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
    # <=90: 3 | 91-100: 2 | 101-110: 1 | 111-219: 0 | >=220: 3
    "systolic_bp": [(60, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    # <=40: 3 | 41-50: 1 | 51-90: 0 | 91-110: 1 | 111-130: 2 | >=131: 3
    "pulse": [(30, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
    # <=35.0: 3 | 35.1-36.0: 1 | 36.1-38.0: 0 | 38.1-39.0: 1 | >=39.1: 2
    "temperature": [(33.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2), (41.0, 2)],
}  # fmt: skip


@pytest.mark.parametrize("parameter", sorted(CHART_1))
def test_chart_1_every_band_edge(parameter):
    for value, points in CHART_1[parameter]:
        assert _points(parameter, **{parameter: value}) == points, (parameter, value)


def test_chart_1_spo2_scale_2_on_air_and_on_oxygen():
    # <=83: 3 | 84-85: 2 | 86-87: 1 | 88-92: 0 | >=93 on air: 0 | 93-94 on O2: 1 | 95-96 on O2: 2 | >=97 on O2: 3
    on_air = {"spo2_scale_2": True, "on_oxygen": False}
    on_oxygen = {"spo2_scale_2": True, "on_oxygen": True}
    edges = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0)]
    for value, points in edges:
        assert _points("spo2", spo2=value, **on_air) == points, value
        assert _points("spo2", spo2=value, **on_oxygen) == points, value
    for value in (93, 94, 95, 96, 97, 100):
        assert _points("spo2", spo2=value, **on_air) == 0, value
    for value, points in [(93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)]:
        assert _points("spo2", spo2=value, **on_oxygen) == points, value


def test_chart_1_air_or_oxygen_and_consciousness():
    assert _points("air_or_oxygen") == 0
    assert _points("air_or_oxygen", on_oxygen=True) == 2
    assert _points("consciousness") == 0
    assert _points("consciousness", alert=False) == 3  # new confusion, V, P or U


def test_values_between_chart_bands_are_rounded_half_up_as_charted():
    assert _points("respiration_rate", respiration_rate=20.4) == 0
    assert _points("respiration_rate", respiration_rate=20.5) == 2  # charted as 21
    assert _points("temperature", temperature=38.04) == 0
    assert _points("temperature", temperature=38.05) == 1  # charted as 38.1
    assert _points("temperature", temperature=35.05) == 1  # charted as 35.1


def test_score_range_is_0_to_20():
    assert news2(NORMAL).score == 0
    worst = VitalSigns(
        respiration_rate=30,
        spo2=85,
        on_oxygen=True,
        systolic_bp=80,
        pulse=140,
        alert=False,
        temperature=34.0,
    )
    assert news2(worst).score == 20  # six parameters at 3, oxygen 2


# --- calculator: RCP 2017 Chart 2 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "score", "risk"),
    [
        ({"pulse": 95, "temperature": 38.5, "respiration_rate": 21}, 4, "low"),  # 1 + 1 + 2
        ({"pulse": 115, "temperature": 38.5, "respiration_rate": 21}, 5, "medium"),  # 2 + 1 + 2
        ({"pulse": 115, "temperature": 39.5, "respiration_rate": 21}, 6, "medium"),  # 2 + 2 + 2
        ({"pulse": 115, "temperature": 39.5, "respiration_rate": 21, "spo2": 95}, 7, "high"),
        ({"respiration_rate": 8}, 3, "low-medium"),  # a single 3, aggregate 3
        ({"alert": False, "pulse": 95}, 4, "low-medium"),  # a single 3, aggregate 4
        ({"alert": False, "on_oxygen": True}, 5, "medium"),  # 5 outranks the single 3
        ({"alert": False, "on_oxygen": True, "spo2": 95, "pulse": 95}, 7, "high"),
    ],
)
def test_chart_2_thresholds_and_triggers(changes, score, risk):
    result = news2(replace(NORMAL, **changes))
    assert (result.score, result.clinical_risk) == (score, risk)


def test_nhs_digital_news2_scenario():
    """NHS Digital FHIR NEWS2 guide, "Mr Smith" (https://nhsconnect.github.io/FHIR-NEWS2/engage_mr_smith.html):
    RR 21, SpO2 93% on air, systolic 120, heart rate 95, alert, 37.5 C. The guide gives no total;
    by Chart 1 it is 2 + 2 + 0 + 0 + 1 + 0 + 0 = 5, medium risk."""
    result = news2(
        VitalSigns(
            respiration_rate=21,
            spo2=93,
            on_oxygen=False,
            systolic_bp=120,
            pulse=95,
            alert=True,
            temperature=37.5,
        )
    )
    assert result.points == {
        "respiration_rate": 2,
        "spo2": 2,
        "air_or_oxygen": 0,
        "systolic_bp": 0,
        "pulse": 1,
        "consciousness": 0,
        "temperature": 0,
    }
    assert (result.score, result.clinical_risk) == (5, "medium")


def test_partial_set_gives_a_lower_bound_and_names_what_is_missing():
    result = partial_news2(RecordedVitals(respiration_rate=25, systolic_bp=85, pulse=135))
    assert result.score == 9 and result.clinical_risk == "high"
    assert result.missing == ("spo2", "air_or_oxygen", "consciousness", "temperature")
    # Oxygen unknown on scale 2: counted as air, the lowest it can score.
    scale_2 = partial_news2(RecordedVitals(spo2=97, spo2_scale_2=True))
    assert scale_2.points == {"spo2": 0} and "air_or_oxygen" in scale_2.missing
    with pytest.raises(ValueError, match="missing"):
        news2(replace(NORMAL, temperature=None))  # type: ignore[arg-type]


# --- the rule: constructed patients ---------------------------------------------------------


def _when(hours_ago: float) -> str:
    return (AS_OF - timedelta(hours=hours_ago)).isoformat()


def pulse_oximetry(
    spo2: float, *, flow: float | None = None, fio2: float | None = None, hours_ago: float = 1
) -> dict:
    """US Core pulse oximetry: SpO2 with the inhaled oxygen flow and concentration as components."""
    components = []
    if flow is not None:
        components.append(
            {
                "code": {"coding": [{"system": LOINC, "code": "3151-8"}]},
                "valueQuantity": {"value": flow, "unit": "L/min", "code": "L/min"},
            }
        )
    if fio2 is not None:
        components.append(
            {
                "code": {"coding": [{"system": LOINC, "code": "3150-0"}]},
                "valueQuantity": {"value": fio2, "unit": "%", "code": "%"},
            }
        )
    return {
        **quantity("spo2", "59408-5", spo2, "%", _when(hours_ago)),
        "code": {
            "coding": [{"system": LOINC, "code": "2708-6"}, {"system": LOINC, "code": "59408-5"}]
        },
        "component": components,
    }


def acvpu(
    answer: tuple[str, str],
    *,
    code: tuple[str, str] = (SNOMED, "1104441000000107"),
    hours_ago: float = 1,
) -> dict:
    return {
        "resourceType": "Observation",
        "id": "acvpu",
        "status": "final",
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": _when(hours_ago),
        "valueCodeableConcept": {"coding": [{"system": answer[0], "code": answer[1]}]},
    }


ALERT, VOICE, UNRESPONSIVE_LOINC = (SNOMED, "248234008"), (SNOMED, "300202002"), (LOINC, "LA9343-0")


def bp(systolic: float, *, unit: str = "mm[Hg]", hours_ago: float = 1) -> dict:
    """A blood pressure panel (85354-9) with its systolic and diastolic components."""
    return {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": _when(hours_ago),
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "unit": unit},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 70, "unit": unit},
            },
        ],
    }


def vitals(
    *,
    rr: float | None = 16,
    spo2: float | None = 97,
    flow: float | None = 0,
    fio2: float | None = None,
    systolic: float | None = 120,
    pulse: float | None = 70,
    consciousness: tuple[str, str] | None = ALERT,
    temperature: float | None = 37.0,
    temperature_unit: str = "Cel",
    hours_ago: float = 1,
    age: int = 70,
) -> list[dict]:
    """A patient and one set of vital signs (None leaves a parameter out); all normal by default."""
    resources: list[dict] = [patient(age=age)]
    if rr is not None:
        resources.append(quantity("rr", "9279-1", rr, "/min", _when(hours_ago)))
    if spo2 is not None:
        resources.append(pulse_oximetry(spo2, flow=flow, fio2=fio2, hours_ago=hours_ago))
    if systolic is not None:
        resources.append(bp(systolic, hours_ago=hours_ago))
    if pulse is not None:
        resources.append(quantity("hr", "8867-4", pulse, "/min", _when(hours_ago)))
    if consciousness is not None:
        resources.append(acvpu(consciousness, hours_ago=hours_ago))
    if temperature is not None:
        resources.append(
            quantity("temp", "8310-5", temperature, temperature_unit, _when(hours_ago))
        )
    return resources


def evaluate(
    library: KnowledgeLibrary,
    resources: list[dict],
    *,
    unavailable: tuple[str, ...] = (),
    thresholds: dict[str, Any] | None = None,
) -> tuple[list[Advice], EvaluationContext]:
    rule = library.rule(RULE)
    if thresholds:
        artifact = rule.artifact.model_copy(
            update={"thresholds": {**rule.artifact.thresholds, **thresholds}}
        )
        rule = Rule(artifact, rule.logic, rule.knowledge)
    ctx = EvaluationContext(
        hook="patient-view",
        context=PatientViewContext(userId=USER, patientId=PID),
        record=PatientRecord.from_resources(PID, resources, unavailable=unavailable),
        as_of=AS_OF,
    )
    advice = rule.evaluate(ctx)
    for item in advice:
        _assert_valid(item.card)
        assert item.rule_id == RULE
    return advice, ctx


def card_of(library: KnowledgeLibrary, resources: list[dict], **kwargs: Any) -> Advice | None:
    advice, _ = evaluate(library, resources, **kwargs)
    assert len(advice) <= 1
    return advice[0] if advice else None


def test_normal_vital_signs_give_no_card(library):
    assert card_of(library, vitals()) is None


def test_high_score_is_a_critical_card_with_every_value_and_the_response(library):
    # RR 26 (3), SpO2 93 (2) on 2 L/min (2), systolic 95 (2), pulse 115 (2), alert, 38.4 C (1).
    advice = card_of(
        library,
        vitals(rr=26, spo2=93, flow=2, systolic=95, pulse=115, temperature=38.4),
    )
    assert advice is not None and advice.card.indicator == "critical"
    assert advice.card.summary.startswith("NEWS2 12 (high clinical risk)")
    detail = advice.card.detail or ""
    for row in (
        "| Respiration rate | 26 /min | 2021-03-31T23:00+00:00 | 3 |",
        "| SpO2 (scale 1) | 93 % |",
        "| Air or oxygen | oxygen (2 L/min) |",
        "| Systolic blood pressure | 95 mm Hg |",
        "| Pulse | 115 /min |",
        "| Consciousness (ACVPU) | Mentally alert |",
        "| Temperature | 38.4 °C |",
    ):
        assert row in detail, row
    assert "emergency assessment" in detail and "scale 1" in detail
    assert advice.card.source.topic.code == RULE


@pytest.mark.parametrize(
    ("changes", "card", "indicator"),
    [
        # Aggregate 4 without a 3: low risk, no card.
        ({"rr": 21, "pulse": 95, "temperature": 38.5}, None, None),
        # Aggregate 5 and 6: medium.
        ({"rr": 21, "pulse": 115, "temperature": 38.5}, "medium", "warning"),
        ({"rr": 21, "pulse": 115, "temperature": 39.5}, "medium", "warning"),
        # Aggregate 7: high.
        ({"rr": 21, "pulse": 115, "temperature": 39.5, "spo2": 95}, "high", "critical"),
        # A single 3 with aggregate 3: low-medium.
        ({"rr": 8}, "single_parameter", "warning"),
        ({"consciousness": VOICE}, "single_parameter", "warning"),
        ({"consciousness": UNRESPONSIVE_LOINC}, "single_parameter", "warning"),
    ],
)
def test_each_response_threshold(library, changes, card, indicator):
    advice = card_of(library, vitals(**changes))
    if card is None:
        assert advice is None
        return
    assert advice is not None and advice.card.indicator == indicator
    summaries = {
        "medium": "(medium clinical risk)",
        "high": "(high clinical risk)",
        "single_parameter": "a score of 3 in one parameter",
    }
    assert summaries[card] in advice.card.summary


def test_single_parameter_card_names_the_parameter(library):
    advice = card_of(library, vitals(rr=8))
    assert advice is not None
    assert "score of 3 in respiration rate" in (advice.card.detail or "")


def test_temperature_in_fahrenheit_is_scored_in_celsius(library):
    # 102.2 F = 39.0 C (1 point), 102.4 F = 39.1 C (2 points); with RR 21 (2) and pulse 115 (2).
    five = card_of(library, vitals(rr=21, pulse=115, temperature=102.2, temperature_unit="[degF]"))
    six = card_of(library, vitals(rr=21, pulse=115, temperature=102.4, temperature_unit="[degF]"))
    assert five is not None and five.card.summary.startswith("NEWS2 5 ")
    assert six is not None and six.card.summary.startswith("NEWS2 6 ")
    assert "102.4 °F (39.1 °C)" in (six.card.detail or "")


def test_mmhg_spelling_and_unknown_units(library):
    resources = vitals(systolic=None, rr=8)
    resources.append(bp(85, unit="mmHg"))  # 3 points, read through the unit alias
    advice = card_of(library, resources)
    assert advice is not None and advice.card.summary.startswith("NEWS2 6 ")
    # A temperature in kelvin cannot be read: temperature is missing, the score incomplete.
    kelvin = card_of(library, vitals(rr=8, systolic=85, temperature=310.0, temperature_unit="K"))
    assert kelvin is not None and kelvin.card.summary.startswith("Incomplete NEWS2 of at least 6")


def test_missing_parameter_never_gives_a_full_score(library):
    # Everything else normal: a lower bound of 0 says nothing, so no card.
    assert card_of(library, vitals(temperature=None)) is None
    # The recorded parameters already reach 7: an incomplete card, critical, naming what is missing.
    advice = card_of(
        library, vitals(rr=26, spo2=93, flow=2, systolic=95, temperature=None, consciousness=None)
    )
    assert advice is not None and advice.card.indicator == "critical"
    assert advice.card.summary.startswith("Incomplete NEWS2 of at least 9")
    detail = advice.card.detail or ""
    assert "no readable value for consciousness (ACVPU) and temperature" in detail
    assert "| Temperature | none readable | - | missing |" in detail
    # Reaching 5: an incomplete medium card.
    medium = card_of(library, vitals(rr=21, pulse=115, temperature=None, systolic=100))
    assert medium is not None and medium.card.indicator == "warning"
    assert medium.card.summary.startswith("Incomplete NEWS2 of at least 6")


def test_observations_outside_the_window_are_not_used(library):
    old = vitals(rr=26, spo2=93, flow=2, systolic=95, pulse=115, hours_ago=13)
    assert card_of(library, old) is None  # every parameter missing: nothing to say
    # The window is a site setting: 24 h includes them.
    advice = card_of(library, old, thresholds={"observation_window_hours": 24})
    assert advice is not None and advice.card.indicator == "critical"
    # One stale parameter among recent ones is missing, not scored.
    resources = vitals(rr=None, spo2=93, flow=2, systolic=95, pulse=115)
    resources.append(quantity("rr", "9279-1", 26, "/min", _when(13)))
    advice = card_of(library, resources)
    assert advice is not None and advice.card.summary.startswith("Incomplete NEWS2 of at least 8")


def test_bounds_and_text_are_not_scored_and_do_not_fall_back_to_older_values(library):
    resources = vitals(rr=None, pulse=115, systolic=95, spo2=93, flow=2)
    resources.append(quantity("rr-old", "9279-1", 26, "/min", _when(3)))
    newest = quantity("rr-new", "9279-1", 30, "/min", _when(1))
    newest["valueQuantity"]["comparator"] = ">"
    resources.append(newest)
    advice, ctx = evaluate(library, resources)
    assert advice and advice[0].card.summary.startswith("Incomplete NEWS2 of at least 8")
    assert "| Respiration rate | none readable |" in (advice[0].card.detail or "")
    assert any("a bound rather than a value" in issue.problem for issue in ctx.record.issues)
    text = vitals(temperature=None)
    febrile = quantity("temp", "8310-5", 0, "Cel", _when(1))
    del febrile["valueQuantity"]
    text.append({**febrile, "valueString": "febrile"})
    _, ctx = evaluate(library, text)
    assert any("could not be read" in issue.problem for issue in ctx.record.issues)


@pytest.mark.parametrize(
    ("flow", "fio2", "on_oxygen"),
    [(0, None, False), (2, None, True), (None, 21, False), (None, 28, True), (0, 35, True)],
)
def test_air_or_oxygen_from_flow_rate_or_inhaled_concentration(library, flow, fio2, on_oxygen):
    # Pulse 115 (2), RR 21 (2), SpO2 94 (1): oxygen (+2) makes it 7 (high), air leaves it 5.
    advice = card_of(library, vitals(rr=21, pulse=115, spo2=94, flow=flow, fio2=fio2))
    assert advice is not None
    assert advice.card.indicator == ("critical" if on_oxygen else "warning")
    assert ("| Air or oxygen | oxygen (" if on_oxygen else "| Air or oxygen | air (") in (
        advice.card.detail or ""
    )


def test_oxygen_status_not_recorded_is_missing(library):
    advice = card_of(library, vitals(rr=21, pulse=115, spo2=94, flow=None))
    assert advice is not None and advice.card.summary.startswith("Incomplete NEWS2 of at least 5")
    assert "no readable value for air or oxygen" in (advice.card.detail or "")


def hypercapnic_failure(code: str = "J96.12") -> dict:
    resource = condition("x")
    resource["id"] = "hcrf"
    resource["code"] = {"coding": [{"system": ICD10CM, "code": code}]}
    return resource


def test_scale_2_only_with_documented_hypercapnic_respiratory_failure(library):
    # SpO2 88% on 2 L/min, RR 22 (2), pulse 95 (1): scale 1 gives 3 + 2 + 2 + 1 = 8 (high),
    # scale 2 gives 0 + 2 + 2 + 1 = 5 (medium).
    set_ = vitals(spo2=88, flow=2, rr=22, pulse=95)
    without = card_of(library, set_)
    assert without is not None and without.card.indicator == "critical"
    assert "no hypercapnic respiratory failure is documented" in (without.card.detail or "")
    with_ = card_of(library, [*set_, hypercapnic_failure("J9612")])
    assert with_ is not None and with_.card.indicator == "warning"
    detail = with_.card.detail or ""
    assert with_.card.summary.startswith("NEWS2 5 ")
    assert "| SpO2 (scale 2) | 88 % |" in detail
    assert "ICD-10-CM J96.12" in detail and "on scale 1 the score would be 8" in detail
    # On scale 2, over-oxygenation scores: 97% on oxygen is 3 points.
    high = card_of(library, [*vitals(spo2=97, flow=2, rr=22), hypercapnic_failure()])
    assert high is not None and high.card.summary.startswith("NEWS2 7 ")
    # Resolved, or respiratory failure not documented as hypercapnic: scale 1.
    resolved = hypercapnic_failure()
    resolved["clinicalStatus"]["coding"][0]["code"] = "resolved"
    unspecified = hypercapnic_failure("J96.10")
    for other in (resolved, unspecified):
        advice = card_of(library, [*set_, other])
        assert advice is not None and advice.card.indicator == "critical"


def test_observation_fetch_failure_claims_nothing(library):
    # Observations could not be fetched: no vital signs, no card and no claim of absence.
    advice, ctx = evaluate(library, [patient(age=70)], unavailable=("Observation",))
    assert advice == [] and ctx.unchecked == []
    # A partial set beside a failed fetch: the incomplete card (which asserts what is missing)
    # is held back and reported as a check that could not be completed.
    partial = vitals(rr=26, spo2=93, flow=2, systolic=95, temperature=None)
    advice, ctx = evaluate(library, partial, unavailable=("Observation",))
    assert advice == [] and [u.rule_id for u in ctx.unchecked] == [RULE]


def test_conditions_not_fetched_say_scale_2_could_not_be_looked_for(library):
    advice, _ = evaluate(
        library, vitals(rr=26, spo2=93, flow=2, systolic=95), unavailable=("Condition",)
    )
    assert advice and "conditions could not be retrieved" in (advice[0].card.detail or "")


def test_consciousness_answers(library):
    # AVPU under LOINC 67775-7 with a LOINC answer.
    loinc = vitals(consciousness=None)
    loinc.append(acvpu(UNRESPONSIVE_LOINC, code=(LOINC, "67775-7")))
    advice = card_of(library, loinc)
    assert advice is not None and "| Consciousness (ACVPU) | Unresponsive |" in (
        advice.card.detail or ""
    )
    # An answer that is no ACVPU level: not scored, and said on the data-quality card.
    unknown = vitals(consciousness=(SNOMED, "123456"), rr=8)
    advice, ctx = evaluate(library, unknown)
    assert advice and advice[0].card.summary.startswith("Incomplete NEWS2 with a score of 3")
    assert any("not a known ACVPU level" in issue.problem for issue in ctx.record.issues)


def test_a_newer_free_text_consciousness_entry_is_not_replaced_by_an_older_code(library):
    # Alert an hour ago, then "confused" typed as text: the older "alert" must not be scored.
    typed = acvpu(ALERT, hours_ago=0.5)
    typed["id"] = "typed"
    del typed["valueCodeableConcept"]
    typed["valueString"] = "confused"
    advice, ctx = evaluate(library, [*vitals(rr=8), typed])
    assert advice and advice[0].card.summary.startswith("Incomplete NEWS2")
    assert "| Consciousness (ACVPU) | Mentally alert |" not in (advice[0].card.detail or "")
    assert any("'confused' is free text" in issue.problem for issue in ctx.record.issues)


@pytest.mark.parametrize(
    "resources",
    [
        vitals(rr=26, spo2=93, flow=2, systolic=95, age=15),
        [*vitals(rr=26, spo2=93, flow=2, systolic=95), condition("72892002")],  # pregnancy
    ],
    ids=["under-16", "pregnant"],
)
def test_out_of_scope_patients_get_no_card(library, resources):
    assert card_of(library, resources) is None


def test_patient_view_prefetch_asks_for_the_vital_signs(library):
    query = build_services(library)["lhs-patient-view"].definition.prefetch["observations"]
    vital_signs = ("9279-1", "8867-4", "59408-5", "2708-6", "8310-5", "85354-9", "8480-6")
    oxygen_and_consciousness = ("3150-0", "3151-8", "67775-7")
    for code in (*vital_signs, *oxygen_and_consciousness):
        assert f"{LOINC}|{code}" in query, code

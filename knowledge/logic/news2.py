"""NEWS2 early warning from the latest vital signs (RCP 2017).

Each of the seven NEWS2 parameters is the latest readable value recorded within the
artifact's window before the call (a local choice). Bounds ("<8") and free text are never
scored, and when the newest value of a parameter is one of them, an older value does not
stand in for it (``PatientRecord.latest_value``). Values are read in the units of the FHIR
vital signs profile (UCUM): /min, %, mm[Hg], Cel or [degF] (converted to Celsius), L/min;
values in other units are passed over.

Air or oxygen comes from the inhaled oxygen flow rate or concentration (components of a
pulse oximetry Observation in US Core, or Observations of their own); consciousness from a
coded ACVPU/AVPU answer. SpO2 is scored on scale 2 only when hypercapnic respiratory failure
is documented as an active condition (RCP: scale 1 unless it is), and the card says which
scale was used and why.

A full NEWS2 needs all seven parameters. With some missing, the recorded ones still give a
lower bound (no parameter scores below 0): a card is shown only when that lower bound already
reaches a response threshold, and it says the score is incomplete, what is missing and that
the full score can only be higher. Low-risk scores give no card (see the artifact).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fhir_client.codes import SYSTEM_NAMES
from fhir_client.record import Code, PatientRecord
from knowledge.artifact import RuleArtifact
from knowledge.calculators.news2 import (
    PARAMETERS,
    News2Result,
    RecordedVitals,
    as_charted,
    partial_news2,
)
from knowledge.logic.common import living_age, threshold, value_set
from knowledge.rule import EvaluationContext, Finding, Knowledge

Conversion = Callable[[float], float]


def _same(value: float) -> float:
    return value


def _fahrenheit_to_celsius(value: float) -> float:
    # Rounded as the chart is written (0.1 degree), so the card shows the value that is scored.
    return as_charted((value - 32) * 5 / 9, 1)


# Units a parameter is read in, each with its conversion to the unit Chart 1 is written in.
_PER_MINUTE: Mapping[str, Conversion] = {
    "/min": _same,
    "{beats}/min": _same,
    "{breaths}/min": _same,
}
_PERCENT: Mapping[str, Conversion] = {"%": _same}
_MM_HG: Mapping[str, Conversion] = {"mm[Hg]": _same}
_TEMPERATURE: Mapping[str, Conversion] = {
    "Cel": _same,
    "°C": _same,
    "[degF]": _fahrenheit_to_celsius,
    "°F": _fahrenheit_to_celsius,
}
_LITRES_PER_MINUTE: Mapping[str, Conversion] = {"L/min": _same}
_UNIT_TEXT = {"mm[Hg]": "mm Hg", "Cel": "°C", "[degF]": "°F"}

_LABELS = {
    "respiration_rate": "respiration rate",
    "spo2": "SpO2",
    "air_or_oxygen": "air or oxygen",
    "systolic_bp": "systolic blood pressure",
    "pulse": "pulse",
    "consciousness": "consciousness (ACVPU)",
    "temperature": "temperature",
}
# RecordedVitals field of each Chart 1 parameter.
_FIELDS = {
    "respiration_rate": "respiration_rate",
    "spo2": "spo2",
    "air_or_oxygen": "on_oxygen",
    "systolic_bp": "systolic_bp",
    "pulse": "pulse",
    "consciousness": "alert",
    "temperature": "temperature",
}


@dataclass(frozen=True)
class _Reading:
    value: float | bool
    """in the unit Chart 1 is written in (True/False for oxygen and alert)"""
    shown: str
    """as recorded, for the card"""
    measured: datetime


def news2_early_warning(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    record, as_of = ctx.record, ctx.as_of
    if not _in_scope(record, as_of, t, knowledge):
        return []
    window_hours = threshold(t, "observation_window_hours")
    since = as_of - timedelta(hours=window_hours)
    readings = _readings(record, as_of, since, t, knowledge)
    diagnosis = _hypercapnic_failure(record, as_of, knowledge)
    vitals = RecordedVitals(
        **{_FIELDS[name]: reading.value for name, reading in readings.items()},
        spo2_scale_2=diagnosis is not None,
    )
    result = partial_news2(vitals)
    card = _card(result, t)
    if card is None:
        return []
    red = threshold(t, "red_single_parameter_score")
    return [
        Finding(
            card=card,
            values={
                "score": result.score,
                "window_hours": window_hours,
                "observations": _table(result, readings, vitals.spo2_scale_2),
                "scale_note": _scale_note(record, vitals, result, diagnosis),
                "red_parameters": _names(p for p in PARAMETERS if result.points.get(p) == red),
                "missing": _names(result.missing),
            },
        )
    ]


def _in_scope(
    record: PatientRecord, as_of: datetime, t: Mapping[str, Any], knowledge: Knowledge
) -> bool:
    age = living_age(record, as_of)
    if age is None or age < threshold(t, "min_age"):
        return False
    pregnancy = value_set(knowledge, "preventive-pregnancy-conditions")
    return not record.has_active_condition(pregnancy, as_of=as_of)


def _card(result: News2Result, t: Mapping[str, Any]) -> str | None:
    """The card for the score's response level (Chart 2); None at low risk. With parameters
    missing the level is that of the lower bound, so it can only be an understatement."""
    if result.score >= threshold(t, "high_risk_min_score"):
        level = "high"
    elif result.score >= threshold(t, "medium_risk_min_score"):
        level = "medium"
    elif any(p == threshold(t, "red_single_parameter_score") for p in result.points.values()):
        level = "single_parameter"
    else:
        return None
    return f"incomplete_{level}" if result.missing else level


def _readings(
    record: PatientRecord,
    as_of: datetime,
    since: datetime,
    t: Mapping[str, Any],
    knowledge: Knowledge,
) -> dict[str, _Reading]:
    """The latest readable value of each parameter in the window; missing ones are absent."""

    def latest(value_set_id: str, units: Mapping[str, Conversion]) -> _Reading | None:
        return _latest(record, value_set(knowledge, value_set_id), units, as_of, since)

    found = {
        "respiration_rate": latest("respiratory-rate", _PER_MINUTE),
        "spo2": latest("oxygen-saturation", _PERCENT),
        "air_or_oxygen": _oxygen(
            latest("inhaled-oxygen-flow-rate", _LITRES_PER_MINUTE),
            latest("inhaled-oxygen-concentration", _PERCENT),
            threshold(t, "room_air_oxygen_percent"),
        ),
        "systolic_bp": latest("systolic-blood-pressure", _MM_HG),
        "pulse": latest("heart-rate", _PER_MINUTE),
        "consciousness": _consciousness(record, as_of, since, knowledge),
        "temperature": latest("body-temperature", _TEMPERATURE),
    }
    return {name: reading for name, reading in found.items() if reading is not None}


def _latest(
    record: PatientRecord,
    codes: Collection[Code],
    units: Mapping[str, Conversion],
    as_of: datetime,
    since: datetime,
) -> _Reading | None:
    """The newest value of ``codes`` since ``since`` in any of ``units``, converted."""
    dated = [
        (m.effective, m)
        for unit in units
        if (m := record.latest_value(codes, unit, as_of=as_of, max_age=as_of - since))
        and m.effective is not None
    ]
    if not dated:
        return None
    measured, newest = max(dated, key=lambda pair: pair[0])
    convert = units[newest.unit]
    value = convert(newest.value)
    shown = f"{newest.value:g} {_UNIT_TEXT.get(newest.unit, newest.unit)}"
    if convert is not _same:
        shown += f" ({value:g} °C)"  # only temperatures are converted
    return _Reading(value, shown, measured)


def _oxygen(
    flow: _Reading | None, concentration: _Reading | None, room_air_percent: float
) -> _Reading | None:
    """Air or oxygen from the newest flow rate or inhaled concentration; when both were
    recorded at that moment (one pulse oximetry reading), oxygen if either says so."""
    found = [(r, float(r.value) > 0) for r in (flow,) if r is not None] + [
        (r, float(r.value) > room_air_percent) for r in (concentration,) if r is not None
    ]
    if not found:
        return None
    newest = max(r.measured for r, _ in found)
    latest = [(r, on) for r, on in found if r.measured == newest]
    on_oxygen = any(on for _, on in latest)
    shown = ", ".join(r.shown for r, _ in latest)
    return _Reading(on_oxygen, f"{'oxygen' if on_oxygen else 'air'} ({shown})", newest)


def _consciousness(
    record: PatientRecord, as_of: datetime, since: datetime, knowledge: Knowledge
) -> _Reading | None:
    """Alert or not from the latest coded ACVPU/AVPU answer in the window. An answer in both
    sets (conflicting codings) counts as not alert, which errs toward escalation."""
    observed = record.latest_coded(value_set(knowledge, "level-of-consciousness"), as_of=as_of)
    if observed is None or observed.effective is None or observed.effective < since:
        return None
    for value_set_id, alert in (("acvpu-not-alert", False), ("acvpu-alert", True)):
        matched = sorted(observed.values & value_set(knowledge, value_set_id))
        if matched:
            shown = knowledge.value_sets[value_set_id].display(matched[0]) or matched[0][1]
            return _Reading(alert, shown, observed.effective)
    system, code = observed.code
    record.note_issue(
        f"Observation {SYSTEM_NAMES.get(system, system)} {code} of "
        f"{observed.effective.date().isoformat()}",
        "the answer is not a known ACVPU level: NEWS2 consciousness was not scored",
    )
    return None


def _hypercapnic_failure(
    record: PatientRecord, as_of: datetime, knowledge: Knowledge
) -> str | None:
    """The documented hypercapnic respiratory failure that selects SpO2 scale 2, if any."""
    diagnoses = knowledge.value_sets["hypercapnic-respiratory-failure"]
    for condition in record.active_conditions(as_of=as_of):
        matched = sorted(condition.codes & diagnoses.codes)
        if matched:
            system, code = matched[0]
            return f"{SYSTEM_NAMES.get(system, system)} {code} {diagnoses.display(matched[0])}"
    return None


def _scale_note(
    record: PatientRecord, vitals: RecordedVitals, result: News2Result, diagnosis: str | None
) -> str:
    if diagnosis is not None:
        scale_1 = partial_news2(replace(vitals, spo2_scale_2=False))
        bound = " (lower bound)" if result.missing else ""
        return (
            f"SpO2 is scored on **scale 2** because hypercapnic respiratory failure is "
            f"documented ({diagnosis}). Scale 2 applies only when a target saturation of "
            f"88-92% has been prescribed; on scale 1 the score would be {scale_1.score}{bound}."
        )
    if not record.is_complete("Condition"):
        return (
            "SpO2 is scored on **scale 1**: the patient's conditions could not be retrieved, so "
            "a documented hypercapnic respiratory failure (SpO2 scale 2) could not be looked for."
        )
    return (
        "SpO2 is scored on **scale 1**: no hypercapnic respiratory failure is documented "
        "(scale 2 is only for patients with a prescribed target saturation of 88-92%)."
    )


def _table(result: News2Result, readings: Mapping[str, _Reading], scale_2: bool) -> str:
    rows = ["| Parameter | Latest value | Measured | Points |", "|---|---|---|---|"]
    for name in PARAMETERS:
        label = _LABELS[name][0].upper() + _LABELS[name][1:]
        if name == "spo2":
            label += f" (scale {2 if scale_2 else 1})"
        reading = readings.get(name)
        if reading is None:
            rows.append(f"| {label} | none readable | - | missing |")
        else:
            measured = reading.measured.isoformat(timespec="minutes")
            rows.append(f"| {label} | {reading.shown} | {measured} | {result.points[name]} |")
    return "\n".join(rows)


def _names(parameters: Iterable[str]) -> str:
    labels = [_LABELS[p] for p in parameters]
    return ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else "".join(labels)

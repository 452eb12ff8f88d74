"""Serving the registry's @champion in-process, and turning its predictions into cards.

``ModelSlot`` holds the version being served. A refresh (at start and then periodically,
in a worker thread) asks the registry where @champion points; when it moved, the new
version is loaded completely and only then put in the slot, by one reference assignment.
A request reads the slot once, so it is answered wholly by the old or wholly by the new
version, and none waits for a load. If no version can be loaded, the slot stays empty (or
keeps the old version) and the rules answer alone.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_client.demographics import Demographics, demographics
from hooks.cards import Card, Coding, Link, Source
from knowledge.logic.readmission import transitional_care_suggestion
from knowledge.rule import OVERRIDE_REASONS, RULE_TOPIC_SYSTEM, Advice, EvaluationContext
from models.features import FEATURE_NAMES, FEATURE_SET_VERSION, ReadmissionFeatures
from models.registry import (
    CHAMPION,
    MlflowLocation,
    alias_version,
    download_model,
    model_metadata,
    version_tags,
)
from models.risk_model import RiskModel
from models.tasks import PredictionTask
from models.updating import UpdatedRiskModel

logger = logging.getLogger(__name__)

TOP_FACTORS = 3
MIN_FACTOR_EFFECT = 0.05
"""Effects on the log-odds smaller than this are not worth a clinician's attention."""


class IncompatibleModel(Exception):
    """The registered model expects other features than this service computes."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    model: UpdatedRiskModel | RiskModel
    metadata: Mapping[str, Any]
    model_card: Mapping[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float | None:
        value = self.metadata.get("decision_threshold")
        return float(value) if value is not None else None


def load_served_model(location: MlflowLocation, name: str, version: str) -> ServedModel:
    import mlflow.sklearn

    path = download_model(location, name, version)
    metadata = model_metadata(path)
    if (
        metadata.get("feature_set_version") != FEATURE_SET_VERSION
        or tuple(metadata.get("feature_names", ())) != FEATURE_NAMES
    ):
        raise IncompatibleModel(
            f"{name} v{version} was trained on feature set "
            f"{metadata.get('feature_set_version')!r}, this service computes {FEATURE_SET_VERSION!r}"
        )
    model = mlflow.sklearn.load_model(str(path))
    card = dict(metadata.get("model_card", {}))
    if card:
        # How this version came to serve is known only after training: the registry's
        # version tag (set before the alias moves) says it, not the card written before.
        approval = version_tags(location, name, version).get("approval")
        card["approval"] = approval or "not recorded in the registry"
    return ServedModel(name, version, model, metadata, card)


class ModelSlot:
    """The version of one registered model being served (see the module docstring)."""

    def __init__(self, location: MlflowLocation, task: PredictionTask) -> None:
        self.location = location
        self.task = task
        self.current: ServedModel | None = None
        self.status = "not checked yet"

    @classmethod
    def pinned(cls, location: MlflowLocation, task: PredictionTask, version: str) -> ModelSlot:
        """A slot holding one registered version for good (a challenger in shadow mode): it
        is never refreshed. Raises what loading raises."""
        slot = cls(location, task)
        slot.current = load_served_model(location, task.registered_model, version)
        slot.status = "ok"
        return slot

    def refresh(self) -> bool:
        """Follow @champion; True when another version was swapped in. Blocking: run in a thread."""
        name = self.task.registered_model
        try:
            version = alias_version(self.location, name, CHAMPION)
            if version is None:
                if self.current is None:
                    self.status = "missing: no @champion registered"
                return False
            if self.current is not None and self.current.version == version:
                return False
            served = load_served_model(self.location, name, version)
        except Exception as error:  # a broken registry must not stop the rules from answering
            logger.warning("model %s not loaded: %s", name, type(error).__name__)
            self.status = f"error: {type(error).__name__}" + (
                f"; serving version {self.current.version}" if self.current else ""
            )
            return False
        self.current = served
        self.status = "ok"
        logger.info("model %s version %s now served", name, version)
        return True


@dataclass(frozen=True)
class Prediction:
    model_name: str
    model_version: str
    risk: float
    threshold: float | None
    features: Mapping[str, float]
    contributions: Mapping[str, float]
    prediction_time: datetime
    """The moment the features describe (the discharge); the outcome window starts here."""
    horizon_days: int
    advice: Advice | None = None
    audit: Demographics | None = None
    """The patient's sex, race and ethnicity, stored for fairness audits; never a feature."""


class ModelRecommender:
    """A model as a recommender: features from the record, a calibrated risk, maybe a card."""

    def __init__(
        self, task: PredictionTask, slot: ModelSlot, features: ReadmissionFeatures
    ) -> None:
        self.task = task
        self.slot = slot
        self.features = features
        self.id = task.registered_model
        self.hooks = frozenset({task.hook})

    @property
    def version(self) -> str:
        served = self.slot.current
        return served.version if served else ""

    def predict(self, ctx: EvaluationContext) -> Prediction | None:
        """Score this call's patient; None without a model or without a discharged encounter."""
        served = self.slot.current  # read once: a swap mid-call cannot mix two versions
        encounter_id = getattr(ctx.context, "encounterId", None)
        stay = ctx.record.resolve(f"Encounter/{encounter_id}") if encounter_id else None
        if served is None or stay is None:
            return None
        at = ctx.index_time
        assessed = self.features.assess(ctx.record, stay, at)
        if assessed is None:
            return None
        features, lace = assessed
        row = [features[name] for name in FEATURE_NAMES]
        risk, contributions = served.model.assess(row)
        prediction = Prediction(
            served.name,
            served.version,
            risk,
            served.threshold,
            features,
            contributions,
            at,
            self.task.horizon_days,
            audit=demographics(ctx.record.patient),
        )
        if served.threshold is None or risk < served.threshold:
            return prediction
        card = _risk_card(self.task, served, prediction, lace.result.score, ctx)
        inputs = {
            "risk": f"{risk:.4f}",
            **{name: f"{value:g}" for name, value in features.items()},
        }
        advice = Advice(card, self.id, served.version, inputs)
        return dataclasses.replace(prediction, advice=advice)

    def evaluate(self, ctx: EvaluationContext) -> list[Advice]:
        prediction = self.predict(ctx)
        return [prediction.advice] if prediction and prediction.advice else []


def model_card_url(service_url: str | None, name: str, version: str) -> str | None:
    return (
        f"{service_url.rstrip('/')}/models/{name}/versions/{version}/card" if service_url else None
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _factor_lines(served: ServedModel, prediction: Prediction) -> list[str]:
    labels = served.metadata.get("feature_labels", {})
    ranked = sorted(prediction.contributions.items(), key=lambda item: -abs(item[1]))
    lines = []
    for name, effect in ranked[:TOP_FACTORS]:
        if abs(effect) < MIN_FACTOR_EFFECT:
            break
        direction = "raises" if effect > 0 else "lowers"
        value = prediction.features[name]
        lines.append(
            f"- {labels.get(name, name)}: {value:g} - {direction} the risk "
            f"({effect:+.2f} on the log-odds, against the average patient)"
        )
    return lines or ["- no single factor stands out; the risk reflects many small ones"]


def _risk_card(
    task: PredictionTask,
    served: ServedModel,
    prediction: Prediction,
    lace_score: int,
    ctx: EvaluationContext,
) -> Card:
    rates = served.metadata.get("observed_rates", {})
    lace_min = served.metadata.get("lace_high_risk_min", 10)
    threshold = prediction.threshold or 0.0
    url = model_card_url(ctx.service_url, served.name, served.version)
    band = "high-risk" if lace_score >= lace_min else "lower-risk"
    detail = "\n".join(
        [
            f"Estimated risk of readmission or an emergency visit within {task.horizon_days} "
            f"days of this discharge: **{prediction.risk:.0%}** (calibrated).",
            "",
            f"For comparison: in the data this model learnt from, {_percent(rates.get('all'))} of "
            f"all discharges and {_percent(rates.get('lace_high'))} of those with a LACE index of "
            f"{lace_min} or more returned within {task.horizon_days} days. This discharge's LACE "
            f"index is {lace_score} ({band} band).",
            "",
            "**Main factors for this patient**",
            *_factor_lines(served, prediction),
            "",
            f"Transitional care is recommended from a risk of {threshold:.0%} (the threshold "
            "chosen on the model's decision curve): medication reconciliation, a follow-up "
            "visit within 7 days and a clear plan for whom to call.",
            "",
            f"_Model {served.name} version {served.version} "
            f"({served.metadata.get('candidate', 'model')}); trained on synthetic data: "
            "validate locally before clinical use._",
        ]
    )
    return Card(
        summary=f"Readmission risk {prediction.risk:.0%} in {task.horizon_days} days "
        f"(threshold {threshold:.0%}): plan transitional care",
        detail=detail,
        indicator="warning",
        source=Source(
            label=f"LHS model {served.name} v{served.version}",
            url=url,
            topic=Coding(system=RULE_TOPIC_SYSTEM, code=served.name, display=task.title),
        ),
        suggestions=[
            transitional_care_suggestion(
                "Propose a transitional care follow-up visit within 7 days",
                ctx.record.patient_id,
                f"{task.title}: estimated risk {prediction.risk:.0%}",
            )
        ],
        selectionBehavior="at-most-one",
        overrideReasons=list(OVERRIDE_REASONS),
        links=[Link(label="Model card", url=url, type="absolute")] if url else None,
    )

"""The services a deployment offers: the library's rules and the models for each hook, a rule
under an active experiment answering through its arms, shadow candidates running beside them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from knowledge.experiment import ExperimentalRule, ExperimentDefinition
from knowledge.library import KnowledgeLibrary
from knowledge.rule import Recommender, Rule
from knowledge.shadow import Shadow
from models.serving import ModelRecommender
from point_of_care.invocation import Service
from point_of_care.services import SERVICE_SPECS, service_definition

logger = logging.getLogger(__name__)


def build_services(
    library: KnowledgeLibrary,
    models: Sequence[ModelRecommender] = (),
    experiments: Mapping[str, ExperimentDefinition] | None = None,
    shadows: Sequence[Shadow] = (),
) -> dict[str, Service]:
    """One service per spec, answered by the library's rules and the models for its hook;
    a rule under an active experiment answers through its arms; shadow candidates for the
    hook run silently beside them."""
    by_rule = {e.rule: e for e in (experiments or {}).values()}
    services: dict[str, Service] = {}
    for spec in SERVICE_SPECS:
        rules = tuple(rule for rule in library.rules if spec.hook in rule.hooks)
        hook_models = tuple(model for model in models if spec.hook in model.hooks)
        codes = {
            code
            for rule in rules
            for value_set in rule.artifact.value_sets
            for code in library.knowledge.value_sets[value_set].codes
        }
        # A hook without rules or models is not offered: discovery lists only services that act.
        if rules or hook_models:
            recommenders = tuple(_under_experiment(rule, by_rule.get(rule.id)) for rule in rules)
            services[spec.id] = Service(
                service_definition(spec, codes),
                recommenders,
                hook_models,
                tuple(s for s in shadows if spec.hook in s.hooks),
                library.knowledge.medications,
            )
    return services


def _under_experiment(rule: Rule, experiment: ExperimentDefinition | None) -> Recommender:
    if experiment is None:
        return rule
    try:
        return ExperimentalRule.of(experiment, rule)
    except ValueError:
        # Checked when started; if the rule changed since, the rule runs as shipped.
        logger.exception("experiment %s no longer fits rule %s", experiment.id, rule.id)
        return rule

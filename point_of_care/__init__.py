"""Point of care: the CDS services, what one hook call does (record, rules, models, cards),
and sweeps of the same calls over a population of records."""

from importlib.metadata import version

SERVICE_VERSION = version("learning-health-system")
"""The installed release: the version of the service's own cards (data availability)."""

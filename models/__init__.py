"""Predictive models: features from FHIR, training, the MLflow registry and in-process serving."""

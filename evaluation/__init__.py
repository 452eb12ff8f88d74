"""Metrics, calibration, fairness, decision curves and model cards for the service's models."""

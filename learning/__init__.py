"""The learning loop over stored practice: outcome labels, retraining, outcome sync, outbreak
surveillance, experiments, shadow runs and improvement proposals."""

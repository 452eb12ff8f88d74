"""A simulated clinic that runs the whole learning loop against the real service (`make demo`)."""

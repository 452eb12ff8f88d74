"""One router per concern: hooks, feedback, outcomes, analytics, transparency, operations."""

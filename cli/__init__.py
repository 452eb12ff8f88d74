"""The ``lhs`` command line: one module per command group, one way to report errors."""

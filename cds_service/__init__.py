"""The HTTP layer: CDS Hooks 2.0 endpoints and the learning API, over the domain packages."""

"""Persistence: tables and migrations, the repository the service, the CLI and the learning
jobs read and write through, the invocation writer, the spool of writes the database could
not take, and the leases that let one process of a deployment run the background jobs."""

"""The installation's own state: the master key's check value, its rotation, readiness."""

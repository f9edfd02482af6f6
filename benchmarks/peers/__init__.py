"""Peer SCIM servers the benchmarks run beside provisor: django-scim2 and its launcher."""

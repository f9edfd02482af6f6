"""Provisioning jobs: read a source, transform, write every target (spec §3)."""

"""Tenants: the installation's isolated provisioning tenants, their quotas and life cycle."""

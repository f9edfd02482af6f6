"""A minimal Django project serving django-scim2 (the peer of benchmarks/scim_directory.py)."""

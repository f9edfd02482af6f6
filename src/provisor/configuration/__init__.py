"""A tenant's configuration as one document: export, plan, apply; bundle templates."""

"""Technical users (clients), their credentials and permissions, and bearer tokens."""

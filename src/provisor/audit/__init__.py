"""The audit log: its views, export, chain verification, retention, and the sign-in events."""

"""Notifications: job, certificate and failed-login messages to subscribers by e-mail or webhook."""

"""Administrators: the people who use the console, their sessions and single sign-on."""

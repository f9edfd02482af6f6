"""Connectors: the back-ends provisor reads from and writes to, behind one interface."""

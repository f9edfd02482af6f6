"""Transformations: SAP-compatible mapping documents turning entities into other shapes.

Pure Python: no HTTP, no SQL. ``Transformation(document, properties).apply(...)`` runs one
entity through a document and returns an outcome.
"""

from provisor.transform.engine import (
    Deleted,
    Failed,
    FunctionStep,
    Ignored,
    Outcome,
    Skipped,
    TraceStep,
    Transformation,
    Transformed,
)
from provisor.transform.functions import EntityIdResolver
from provisor.types import Operation

__all__ = [
    "Deleted",
    "EntityIdResolver",
    "Failed",
    "FunctionStep",
    "Ignored",
    "Operation",
    "Outcome",
    "Skipped",
    "TraceStep",
    "Transformation",
    "Transformed",
]

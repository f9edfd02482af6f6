"""SCIM 2.0 without I/O: schemas, values, PATCH, filter matching, projection, errors."""

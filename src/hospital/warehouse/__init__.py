"""Schemas, roles and migrations of the two databases (``ehr`` and ``hospital``)."""

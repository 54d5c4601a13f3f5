"""One exception root for the whole platform.

Every error the platform raises on purpose derives from :class:`HospitalError`, so the CLI can
print one clear sentence instead of a traceback, and callers can catch the family at once.
"""

from __future__ import annotations


class HospitalError(Exception):
    """Root of every error the platform raises deliberately."""


class ConfigError(HospitalError):
    """A setting is missing or invalid; the message names the variable."""


class PrerequisiteError(HospitalError):
    """A tool the platform needs (Java, Maven, PostgreSQL binaries) is missing."""


class StackError(HospitalError):
    """A local service failed to start, stop or answer its health check."""


class MigrationError(HospitalError):
    """A schema migration could not be applied."""


class SimulationError(HospitalError):
    """The simulator was asked for something it cannot produce."""


class IngestError(HospitalError):
    """A record could not be ingested; the message names the file/offset/field."""


class FhirError(HospitalError):
    """FHIR input or a ViewDefinition is invalid."""


class StreamError(HospitalError):
    """The stream path (Kafka producer, consumer or one of its sinks) failed."""


class CdcError(HospitalError):
    """The CDC path (Debezium connector, applier or reconciliation) failed."""

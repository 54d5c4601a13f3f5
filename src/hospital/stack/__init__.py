"""The local stack: PostgreSQL 15, Kafka (KRaft) and Kafka Connect with Debezium, run as
the project's own processes under one state directory (``HOSPITAL_STACK_DIR``)."""

from hospital.stack.manager import Stack
from hospital.stack.service import ServiceStatus

__all__ = ["ServiceStatus", "Stack"]

"""Shared fixtures.

``stack`` starts the real test stack (PostgreSQL, Kafka, Kafka Connect) from ``tests/test.env``
once per session, applies migrations, and stops it at the end even when tests fail
(set HOSPITAL_TEST_KEEP_STACK=1 to leave it running between runs while developing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hospital.settings import Settings
from tests.support import SUMMARY_LINES, stack_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return stack_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    from hospital.stack import Stack

    services = Stack(settings)
    services.up()
    try:
        yield settings
    finally:
        if not os.environ.get("HOSPITAL_TEST_KEEP_STACK"):
            services.down()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)

"""Kafka Connect (distributed mode) with the Debezium PostgreSQL and JDBC sink connectors,
plus a small client for its REST API."""

from __future__ import annotations

import time
from typing import Any

import httpx

from hospital.errors import StackError
from hospital.stack import jvm
from hospital.stack.service import JvmService

DEBEZIUM_POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"
DEBEZIUM_JDBC_SINK = "io.debezium.connector.jdbc.JdbcSinkConnector"


class ConnectClient:
    """The Kafka Connect REST API, as far as the platform uses it."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return httpx.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise StackError(f"Kafka Connect at {self.url} did not answer: {exc}") from exc

    def plugins(self) -> list[str]:
        response = self._request("GET", "/connector-plugins")
        response.raise_for_status()
        return [p["class"] for p in response.json()]

    def connectors(self) -> list[str]:
        response = self._request("GET", "/connectors")
        response.raise_for_status()
        return list(response.json())

    def put_connector(self, name: str, config: dict[str, str]) -> dict[str, Any]:
        """Create or update a connector (PUT is idempotent, unlike POST)."""
        response = self._request("PUT", f"/connectors/{name}/config", json=config)
        if response.status_code >= 400:
            raise StackError(f"Kafka Connect refused connector {name!r}: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def status(self, name: str) -> dict[str, Any]:
        response = self._request("GET", f"/connectors/{name}/status")
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def delete(self, name: str) -> None:
        response = self._request("DELETE", f"/connectors/{name}")
        if response.status_code not in (204, 404):
            raise StackError(f"deleting connector {name!r} failed: {response.text}")

    def wait_running(self, name: str, timeout: float = 90.0) -> dict[str, Any]:
        """Block until the connector and all its tasks run; raise with the trace if one fails."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.status(name)
            tasks = state.get("tasks", [])
            for task in tasks:
                if task.get("state") == "FAILED":
                    trace = str(task.get("trace", ""))[:2000]
                    raise StackError(f"connector {name} task failed: {trace}")
            if (
                state.get("connector", {}).get("state") == "RUNNING"
                and tasks
                and all(t.get("state") == "RUNNING" for t in tasks)
            ):
                return state
            time.sleep(0.5)
        raise StackError(f"connector {name} is not running after {timeout:.0f}s: {state}")


class Connect(JvmService):
    name = "connect"
    main_class = "org.apache.kafka.connect.cli.ConnectDistributed"
    config_name = "worker.properties"
    start_timeout = 240.0

    @property
    def heap_mb(self) -> int:
        return self.settings.connect_heap_mb

    @property
    def external(self) -> bool:
        return False

    @property
    def port(self) -> int | None:
        return self.settings.connect_port

    @property
    def address(self) -> str:
        return self.settings.connect_url

    def client(self) -> ConnectClient:
        return ConnectClient(self.settings.connect_url)

    def healthy(self) -> bool:
        if self.pid() is None:
            return False
        try:
            plugins = ConnectClient(self.settings.connect_url, timeout=5).plugins()
        except (StackError, httpx.HTTPError):
            return False
        return DEBEZIUM_POSTGRES in plugins

    def properties(self) -> str:
        s = self.settings
        return "\n".join(
            [
                "# Written by `hospital stack up` on every start; edit settings, not this file.",
                f"bootstrap.servers={s.bootstrap_servers}",
                "group.id=hospital-connect",
                "key.converter=org.apache.kafka.connect.json.JsonConverter",
                "value.converter=org.apache.kafka.connect.json.JsonConverter",
                # Plain JSON envelopes by default; a connector that needs schemas (the JDBC
                # sink) sets its own converters.
                "key.converter.schemas.enable=false",
                "value.converter.schemas.enable=false",
                "config.storage.topic=_hospital-connect-configs",
                "offset.storage.topic=_hospital-connect-offsets",
                "status.storage.topic=_hospital-connect-status",
                "config.storage.replication.factor=1",
                "offset.storage.replication.factor=1",
                "status.storage.replication.factor=1",
                "offset.storage.partitions=5",
                "status.storage.partitions=1",
                "offset.flush.interval.ms=1000",
                f"listeners=http://{s.host}:{s.connect_port}",
                f"rest.advertised.host.name={s.client_host}",
                f"rest.advertised.port={s.connect_port}",
                f"plugin.path={jvm.layout(s).plugins}",
                "connector.client.config.override.policy=All",
                # Both Debezium plugins ship ServiceLoader manifests; skipping the reflective
                # classpath scan saves ~20 s of start-up on 2 cores.
                "plugin.discovery=service_load",
                "",
            ]
        )

    def start(self) -> None:
        self.ensure_ports_free({"CONNECT_PORT": self.settings.connect_port})
        self.launch()

"""Where the service keeps its predictions: a PostgreSQL database named by DATABASE_URL.

The service works without a database (the earlier sections run it alone); it
then simply stores nothing, and the endpoints that need the database say why
they cannot answer. Each request opens its own short connection, so a database
that restarts is picked up again on the next request without any reconnect logic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

#: Seconds to wait for the database to accept a connection before answering 503.
CONNECT_TIMEOUT = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id             bigserial PRIMARY KEY,
    created_at     timestamptz NOT NULL DEFAULT now(),
    customer       jsonb NOT NULL,
    customer_value double precision NOT NULL
)
"""


class StoreError(Exception):
    """The prediction store cannot do what was asked; the message says why, for a person."""


class DatabaseNotConfigured(StoreError):
    """DATABASE_URL is not set (or not usable), so nothing can be stored or listed."""


class DatabaseUnavailable(StoreError):
    """DATABASE_URL is set but the database does not answer (not ready, stopped, unreachable)."""


@dataclass
class PredictionStore:
    """Predictions in PostgreSQL, one row per call of ``/predict``.

    Attributes:
        url: the ``DATABASE_URL`` value (``postgresql://user:password@host:port/dbname``),
            or ``None`` when the service runs without a database.
        problem: why ``url`` cannot be used (``None`` when it can), found once at startup.
    """

    url: str | None
    problem: str | None = None
    _schema_ready: bool = False

    @classmethod
    def from_url(cls, url: str | None) -> "PredictionStore":
        """Make a store from a ``DATABASE_URL`` value, checking its form (not the connection)."""
        url = (url or "").strip() or None
        if url is None:
            return cls(url=None, problem="DATABASE_URL is not set, so predictions are not stored.")
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return cls(url=url, problem="DATABASE_URL is set but is not a valid PostgreSQL address "
                                        "(expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME).")
        return cls(url=url)

    @property
    def configured(self) -> bool:
        """True when a usable DATABASE_URL was given."""
        return self.problem is None

    def where(self) -> str:
        """The database's host, port and name, without the password (safe to show)."""
        if not self.url:
            return "(none)"
        try:
            info = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return "(unparsable DATABASE_URL)"
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def _connect(self) -> psycopg.Connection[Any]:
        if not self.configured:
            raise DatabaseNotConfigured(self.problem)
        assert self.url is not None
        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except psycopg.OperationalError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[0] if lines else type(exc).__name__
            raise DatabaseUnavailable(
                f"The database at {self.where()} cannot be reached right now ({reason}). "
                "It may still be starting or it may be stopped; try again in a few seconds."
            ) from exc
        if not self._schema_ready:
            try:
                conn.execute(SCHEMA)
            except psycopg.OperationalError as exc:
                conn.close()
                raise DatabaseUnavailable(f"The database at {self.where()} stopped answering: {exc}") from exc
            self._schema_ready = True
        return conn

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one statement on a fresh connection and return its rows.

        A database that was replaced (a new, empty volume) while the service ran
        has no table yet: the schema is then made again and the statement retried once.
        """
        for attempt in (1, 2):
            try:
                with self._connect() as conn:
                    return conn.execute(sql, params).fetchall()
            except psycopg.errors.UndefinedTable:
                self._schema_ready = False
                if attempt == 2:
                    raise
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise DatabaseUnavailable(f"The database at {self.where()} stopped answering: {exc}") from exc
        raise AssertionError("unreachable")

    def save(self, customer: dict[str, Any], customer_value: float) -> int:
        """Store one prediction.

        Args:
            customer: the request's features, as a JSON-able dict.
            customer_value: the prediction, currency units per year.

        Returns:
            The new row's id.

        Raises:
            DatabaseNotConfigured: no usable DATABASE_URL.
            DatabaseUnavailable: the database does not answer.
        """
        row = self._run(
            "INSERT INTO predictions (customer, customer_value) VALUES (%s, %s) RETURNING id",
            (json.dumps(customer), customer_value),
        )
        return int(row[0][0])

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """Return the ``limit`` most recent predictions, newest first.

        Returns:
            Dicts with ``id``, ``created_at`` (ISO 8601, UTC), ``customer`` and ``customer_value``.

        Raises:
            DatabaseNotConfigured: no usable DATABASE_URL.
            DatabaseUnavailable: the database does not answer.
        """
        rows = self._run(
            "SELECT id, created_at, customer, customer_value FROM predictions ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [
            {"id": r[0], "created_at": r[1].isoformat(), "customer": r[2], "customer_value": r[3]}
            for r in rows
        ]

"""Shared by the audit tests: the append-only triggers (SQL from the migration), and events."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection as default_connection

from analysis.audit_hash import GENESIS, event_hash
from analysis.models import AuditEvent

# The triggers as the newest migration that wrote them left them.
MIGRATION = importlib.import_module("analysis.migrations.0012_retention")


def _run(statements, connection) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def drop_triggers(connection=default_connection) -> None:
    _run(MIGRATION.STATEMENTS[connection.vendor][1], connection)


def create_triggers(connection=default_connection) -> None:
    _run(MIGRATION.STATEMENTS[connection.vendor][0], connection)


@contextmanager
def triggers_lifted(connection=default_connection) -> Iterator[None]:
    """What an attacker with database access does first; tests do it to forge rows."""
    drop_triggers(connection)
    try:
        yield
    finally:
        create_triggers(connection)


def forge(event: AuditEvent, **changes) -> None:
    """Change a stored row behind the application's back (triggers lifted)."""
    with triggers_lifted():
        AuditEvent.objects.filter(pk=event.pk).update(**changes)


def rechain(case) -> None:
    """Recompute every hash of a chain after a forgery, as a careful attacker would."""
    prev = GENESIS
    with triggers_lifted():
        for event in AuditEvent.objects.filter(case=case).order_by("seq"):
            event.prev_hash = prev
            event.hash = event_hash(event)
            AuditEvent.objects.filter(pk=event.pk).update(prev_hash=prev, hash=event.hash)
            prev = event.hash


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("case_id", "seq"))

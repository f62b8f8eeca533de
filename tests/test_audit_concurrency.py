"""Eight writers on one case at once still leave a single chain: 1..n, no fork, no gap.

Real threads, real connections and real commits (transaction=True): PostgreSQL serializes
them with an advisory lock per chain, SQLite with its write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, connections

from analysis import audit
from analysis.models import AuditEvent

THREADS, EACH = 8, 25
A = AuditEvent.Action


def write_many(case, user, start: threading.Barrier, errors: list) -> None:
    try:
        start.wait()
        for n in range(EACH):
            _record_retrying(case, user, n)
    except Exception as exc:  # handed to the test thread, which fails with it
        errors.append(exc)
    finally:
        connections.close_all()


def _record_retrying(case, user, n: int) -> None:
    # pytest-django's SQLite test database lives in memory with a shared cache, where a busy
    # writer makes others fail at once ("table is locked") instead of waiting as a file
    # database does. Retry those; a fork would surface as a unique-constraint error instead.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            audit.record(A.CASE_EDITED, actor=user, case=case, details={"n": n})
            return
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc):
                raise
        time.sleep(0.001)  # let the lock holder have the GIL and finish
    raise AssertionError("never got the SQLite write lock")


@pytest.mark.django_db(transaction=True)
def test_eight_threads_leave_one_valid_chain(people):
    start, errors = threading.Barrier(THREADS), []
    threads = [
        threading.Thread(target=write_many, args=(people.case, people.bob, start, errors))
        for _ in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    seqs = list(AuditEvent.objects.filter(case=people.case).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, THREADS * EACH + 1))
    result = audit.verify(people.case)
    assert result.ok and result.checked == THREADS * EACH

"""What audit.record() costs, as a ratio to a plain INSERT of the same row, in the same run.

    .venv/bin/python bench/audit.py [--n 2000] [--batch 100]
    DATABASE_URL=postgres://... .venv/bin/python bench/audit.py    # SQLite, then PostgreSQL

Each write is its own transaction, as in the application (one action, one event). Rounds
alternate `batch` record() calls with `batch` plain INSERTs of the same row (same fields,
hash precomputed, another chain) so drift and noise hit both sides. Two baselines: the ORM's
save(force_insert=True), which is what record() itself ends with, and a raw cursor INSERT.
Then 8 threads write to one case at once on the real (file or server) database, as a check
that the chain stays single with no lock errors.

Each database runs in its own process: Django reads its settings once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

THREADS, EACH = 8, 50


def child(n: int, batch: int) -> dict:
    import _django

    _django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, connections

    from analysis import audit
    from analysis.audit_hash import GENESIS
    from analysis.models import AuditEvent, Case

    user = get_user_model().objects.create_user("bench", password="x")
    audited, plain, raced = (Case.create_with_owner(user=user, title=t) for t in "apr")
    details = {"title": "Transaction 4411", "reference": "2026-CMP-0001", "role": "reviewer"}
    row = dict(
        actor=user, action=AuditEvent.Action.CASE_EDITED, target_type="case",
        target_id=str(audited.id), ip="192.0.2.7", user_agent="Mozilla/5.0 (bench)",
        details=details, prev_hash=GENESIS, hash="f" * 64,
    )  # fmt: skip
    seq = iter(range(1, 10**9))
    fields = AuditEvent._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO analysis_auditevent ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"

    def recorded() -> None:
        audit.record(AuditEvent.Action.CASE_EDITED, actor=user, case=audited,
                     target=audited, details=details)  # fmt: skip

    def orm_insert() -> None:
        event = AuditEvent(id=uuid.uuid4(), case=plain, seq=next(seq), **row)
        event.created_at = _now()
        event.save(force_insert=True)

    def raw_insert() -> None:
        event = AuditEvent(id=uuid.uuid4(), case=plain, seq=next(seq), created_at=_now(), **row)
        params = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    sides = {"record": recorded, "orm": orm_insert, "raw": raw_insert}
    totals = dict.fromkeys(sides, 0.0)
    for side in sides.values():  # warm up: connections, statement caches, first pages
        for _ in range(20):
            side()
    for _ in range(n // batch):
        for name, side in sides.items():
            started = time.perf_counter()
            for _ in range(batch):
                side()
            totals[name] += time.perf_counter() - started
    assert audit.verify(audited).ok

    errors = _race(raced, user, audit, connections)
    result = audit.verify(raced)
    return {
        "database": connection.vendor,
        "n": n // batch * batch,
        "us": {name: total / (n // batch * batch) * 1e6 for name, total in totals.items()},
        "race": {"ok": result.ok and result.checked == THREADS * EACH, "errors": errors},
    }


def _now():
    from django.utils import timezone

    return timezone.now()


def _race(case, user, audit, connections) -> list[str]:
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    def write() -> None:
        try:
            start.wait()
            for _ in range(EACH):
                audit.record("case.edited", actor=user, case=case)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def run(database_url: str | None, n: int, batch: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    args = [sys.executable, __file__, "--child", "--n", str(n), "--batch", str(batch)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"bench child failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="writes per side")
    parser.add_argument("--batch", type=int, default=100, help="writes per side per round")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.batch)))
        return
    urls = [None] + ([os.environ["DATABASE_URL"]] if os.environ.get("DATABASE_URL") else [])
    print(f"audit.record() vs a plain INSERT of the same row, {args.n} each, interleaved")
    print(f"{'database':<11} {'record':>9} {'ORM insert':>11} {'raw insert':>11} "
          f"{'÷ ORM':>7} {'÷ raw':>7}  8 threads × {EACH}")  # fmt: skip
    for url in urls:
        r = run(url, args.n, args.batch)
        us = r["us"]
        race = "one valid chain" if r["race"]["ok"] and not r["race"]["errors"] else r["race"]
        print(
            f"{r['database']:<11} {us['record']:>7.0f}µs {us['orm']:>9.0f}µs {us['raw']:>9.0f}µs "
            f"{us['record'] / us['orm']:>6.2f}× {us['record'] / us['raw']:>6.2f}×  {race}"
        )


if __name__ == "__main__":
    main()

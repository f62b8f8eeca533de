"""What a retention purge costs per item, as a ratio to the bare deletions it does, and
whether its memory stays flat as the number of items grows.

    .venv/bin/python bench/purge.py [--n 10000] [--cases 100]
    DATABASE_URL=postgres://... .venv/bin/python bench/purge.py

The world: n media items spread over `cases` closed cases, each with a 4 KiB original, one
derived file and its upload event on the case's audit chain, under a global policy that makes
originals and derived files due (upload events chained in bulk, as audit.record() would):

1. the purge: `retention_purge.run()`, timed (each item in its own transaction: lock and hold
   check, conditional UPDATE, files through the media store, prefix cache, search rows, audit
   redaction, purge records; per-case and per-run certificates at the end);
2. the bare deletions it does: for each item, unlink the original and the derived file, remove
   the item's folder, and DELETE its row (raw SQL, one autocommit transaction per item), on a
   second world of n items kept by a keep-forever override. They run in slices *during* the
   purge run, one slice after each case it purged, so both sides meet the same disk and
   database load (this machine's disk varies tenfold within minutes); the slices' time is
   taken out of the run's;
3. memory: the run's resident size is sampled every 20 ms (its first tenth against the whole
   run), and the purge runs again under tracemalloc on n/5 and on n items: a flat profile has
   the same peak for both (no list of all items is ever held).

The ratio printed is (1) / (2); the goal is <= 3. Each database runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid

SIZE = 4096


def build(n: int, n_cases: int, tag: str, keep: bool = False) -> list[tuple]:
    """n due items over n_cases closed cases (`keep`: under a keep-forever override, so the
    purge leaves them for the bare side); returns (asset id, case id) pairs."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from analysis.media import storage
    from analysis.models import Case, MediaAsset, RetentionPolicy

    user, _ = get_user_model().objects.get_or_create(username="bench")
    RetentionPolicy.objects.update_or_create(
        case=None, defaults={"originals_days": 1, "derived_days": 1}
    )
    long_ago = timezone.now() - timedelta(days=10)
    pairs = []
    for c in range(n_cases):
        case = Case.create_with_owner(user=user, title=f"{tag} case {c}")
        Case.objects.filter(pk=case.pk).update(status="closed", closed_at=long_ago)
        if keep:
            RetentionPolicy.objects.create(case=case)
        rows = [
            MediaAsset(
                case=case, uploaded_by=user, filename=f"item-{i}.png", kind="image",
                mime="image/png", detected="PNG image", size=SIZE, sha256=uuid.uuid4().hex * 2,
                status="ready", derived={"thumbnail": "thumbnail.jpg"},
            )
            for i in range(n // n_cases)
        ]  # fmt: skip
        MediaAsset.objects.bulk_create(rows)
        for asset in rows:
            original = storage.original_path(case.pk, asset.pk)
            original.parent.mkdir(parents=True, exist_ok=True)
            original.write_bytes(os.urandom(SIZE))
            derived = storage.derived_path(asset.pk, "thumbnail.jpg")
            derived.parent.mkdir(parents=True, exist_ok=True)
            derived.write_bytes(os.urandom(SIZE // 4))
            pairs.append((asset.pk, case.pk))
        _upload_events(case, user, rows)
    return pairs


def _upload_events(case, user, assets) -> None:
    """Each item's upload event, chained exactly as audit.record() does, in bulk."""
    from django.utils import timezone

    from analysis import audit
    from analysis.audit_hash import event_hash
    from analysis.models import AuditEvent

    seq, prev = audit._head(case.pk)
    events = []
    for asset in assets:
        seq += 1
        event = AuditEvent(
            id=uuid.uuid4(), case_id=case.pk, seq=seq, actor=user, action="media.uploaded",
            target_type="mediaasset", target_id=str(asset.pk), created_at=timezone.now(),
            ip="192.0.2.7", user_agent="bench", details={"filename": asset.filename},
            prev_hash=prev,
        )  # fmt: skip
        event.hash = prev = event_hash(event)
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=500)


def bare(pairs: list[tuple]) -> float:
    from django.db import connection

    from analysis.media import storage
    from analysis.models import MediaAsset

    pk_field = MediaAsset._meta.pk
    started = time.perf_counter()
    for asset_id, case_id in pairs:
        os.unlink(storage.original_path(case_id, asset_id))
        os.unlink(storage.derived_path(asset_id, "thumbnail.jpg"))
        os.rmdir(storage.derived_dir(asset_id))
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM analysis_mediaasset WHERE id = %s",
                [pk_field.get_db_prep_value(asset_id, connection)],
            )
    return time.perf_counter() - started


def purge(kept: list[tuple] | None = None) -> tuple[float, float, int, list[int]]:
    """One run, timed, with this process' resident memory sampled every 20 ms. With `kept`,
    a slice of the bare deletions runs after each case the run purges (same moment, same
    disk and database load) and its time is taken out of the run's: returns (purge seconds,
    bare seconds, parts, samples)."""
    from analysis import retention_purge

    bare_seconds, slices = 0.0, _slices(kept or [])
    real = retention_purge.purge_case

    def then_bare(purge_run, plan) -> None:
        nonlocal bare_seconds
        real(purge_run, plan)
        if plan.effective.source != "case":  # a purged case, not a kept (bare) one
            bare_seconds += bare(next(slices, []))

    retention_purge.purge_case = then_bare
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(_rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        run = retention_purge.run(trigger="bench")
    finally:
        retention_purge.purge_case = real
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    bare_seconds += bare(list(_rest(slices)))
    return elapsed - bare_seconds, bare_seconds, run.items, samples


def _slices(pairs: list[tuple], size: int = 100):
    for start in range(0, len(pairs), size):
        yield pairs[start : start + size]


def _rest(slices):
    for chunk in slices:
        yield from chunk


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def traced_purge() -> int:
    tracemalloc.start()
    purge()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def child(n: int, n_cases: int) -> dict:
    import _django

    _django.setup()
    from django.db import connection

    from analysis import audit
    from analysis.media import storage

    purged = build(n, n_cases, "purge")
    kept = build(n, n_cases, "bare", keep=True)
    purge_seconds, bare_seconds, parts, rss = purge(kept)
    assert all(result.ok for result in audit.verify_all()), "a chain broke"
    assert storage.stored_keys() == [], "files left behind"
    assert len(purged) == n
    tenth = max(1, len(rss) // 10)
    build(n // 5, n_cases, "small")
    small_peak = traced_purge()
    build(n, n_cases, "large")
    large_peak = traced_purge()
    return {
        "database": connection.vendor, "items": n, "parts": parts,
        "purge_s": round(purge_seconds, 2), "bare_s": round(bare_seconds, 2),
        "purge_ms_per_item": round(1000 * purge_seconds / n, 3),
        "bare_ms_per_item": round(1000 * bare_seconds / n, 3),
        "ratio": round(purge_seconds / bare_seconds, 2),
        "rss_mib_first_tenth": round(max(rss[:tenth]) / 1024, 1),
        "rss_mib_whole_run": round(max(rss) / 1024, 1),
        f"traced_peak_kib_{n // 5}": small_peak // 1024, f"traced_peak_kib_{n}": large_peak // 1024,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.cases)))
        return
    env = {**os.environ}
    command = [sys.executable, __file__, "--child", f"--n={args.n}", f"--cases={args.cases}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key, value in result.items():
        print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()

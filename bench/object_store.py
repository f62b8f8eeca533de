"""Media on the object store vs the disk, side by side in one run, and the memory it takes.

    .venv/bin/python bench/object_store.py [--mib 256] [--ranges 50]

Starts a SeaweedFS on loopback (as the tests do), then for each store: an upload's finished
partial file goes into the store (rename on the disk; multipart upload to S3), the original is
hashed as verify_media does, 256 KiB ranges are read as a seeking player asks for them, and
(S3) a worker fetches it into its cache, verifying it. Peak RSS above the start is sampled
every 5 ms: it must not grow with the file. Prints MiB/s per step and S3 ÷ disk.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _django  # noqa: E402

_django.setup()

from django.conf import settings  # noqa: E402

from analysis.media import storage  # noqa: E402
from tests.object_store import start_seaweedfs, stop_seaweedfs, use_object_store  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    def __init__(self) -> None:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grew_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def timed(fn, mib: float) -> tuple[float, float]:
    """(MiB/s, peak RSS growth in MiB) of fn moving `mib`."""
    with PeakRss() as rss:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
    return mib / took, rss.grew_mib


def run(store: str, mib: int, ranges: int) -> dict[str, tuple[float, float]]:
    case_id, asset_id, upload_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    partial = storage.partial_path(upload_id)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(2**20))
    size = mib * 2**20
    results = {
        "upload into the store": timed(
            lambda: storage.commit_original(upload_id, case_id, asset_id), mib
        )
    }
    found = {}
    results["hash (verify_media)"] = timed(
        lambda: found.setdefault("sha", storage.hash_original(case_id, asset_id)), mib
    )
    rng = random.Random(1)

    def seek() -> None:
        for _ in range(ranges):
            start = rng.randrange(0, size - 2**18)
            with storage.open_original(case_id, asset_id, start, start + 2**18 - 1) as r:
                assert len(r.read(2**18)) == 2**18

    results[f"{ranges} ranges of 256 KiB"] = timed(seek, ranges / 4)
    if store == "s3":
        results["worker fetch + verify"] = timed(
            lambda: storage.local_original(case_id, asset_id, found["sha"], rehash=False), mib
        )
        storage.release_local()
    storage.remove_original(case_id, asset_id)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--ranges", type=int, default=50)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gemma-bench-store-"))
    settings.MEDIA_ROOT = folder / "media"
    disk = run("filesystem", args.mib, args.ranges)
    server = start_seaweedfs()
    try:
        use_object_store(settings, server, folder)
        s3 = run("s3", args.mib, args.ranges)
    finally:
        stop_seaweedfs(server)
    print(f"{args.mib} MiB original; MiB/s (peak RSS growth MiB)")
    for step, (rate, grew) in s3.items():
        base = disk.get(step)
        line = f"  {step:24s} s3 {rate:8.1f} ({grew:5.1f})"
        if base:
            line += f"   disk {base[0]:8.1f} ({base[1]:5.1f})   s3 ÷ disk {rate / base[0]:.3f}"
        print(line)


if __name__ == "__main__":
    main()

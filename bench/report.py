"""A case report for 200 items and 200 answers: time and peak memory, HTML and PDF.

Peak RSS growth is how far the process's high-water mark rose during that export (run one
format per process, `--formats pdf`, for each format's own peak).

    .venv/bin/python bench/report.py [--items 200] [--answers 200]

Each item has a real JPEG thumbnail on disk (embedded in the report); each answer a
reproducibility record, a mark and a note. Prints render time, the report's size and the
process's peak RSS growth per format (with --trace also Python's peak allocation).
"""

from __future__ import annotations

import argparse
import io
import logging
import resource
import time
import tracemalloc
import uuid

import _django

_django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from PIL import Image  # noqa: E402

from analysis import report  # noqa: E402
from analysis.media import storage  # noqa: E402
from analysis.models import Analysis, AnswerMark, Case, MediaAsset, ReviewNote  # noqa: E402


def thumbnail(i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 180), ((i * 37) % 255, (i * 91) % 255, 120)).save(
        out, "JPEG", quality=80
    )
    return out.getvalue()


def make_case(user, n_items: int, n_answers: int) -> Case:
    case = Case.create_with_owner(user=user, title="Report bench", reference="BENCH-1")
    items = MediaAsset.objects.bulk_create(
        MediaAsset(
            case=case,
            uploaded_by=user,
            filename=f"camera-{i:03d}.mp4",
            kind="video",
            mime="video/mp4",
            detected="MP4 video, H.264, 1280 × 720, 30.0 s",
            size=50_000_000 + i,
            sha256=uuid.uuid4().hex * 2,
            status="ready",
            derived={"thumbnail": "thumb.jpg"},
        )  # fmt: skip
        for i in range(n_items)
    )
    for i, item in enumerate(items):
        path = storage.derived_path(item.id, "thumb.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(thumbnail(i))
    record = {
        "model": {"name": "gemma-4-e4b", "gguf_sha256": "a" * 64, "mmproj_sha256": "b" * 64},
        "llama_cpp_python": "0.3.36", "template_sha256": "c" * 64,
        "sampler": {"temperature": 0.0, "seed": 0, "max_tokens": 512},
        "tokens": {"prompt": 2400, "completion": 180},
    }  # fmt: skip
    answers = Analysis.objects.bulk_create(
        Analysis(
            case=case,
            created_by=user,
            question=f"What happens in camera {i}?",
            status="succeeded",
            answer="A courier arrives [00:00:04] and leaves [00:00:19]. " * 6,
            record={
                **record,
                "media": [
                    {
                        "name": items[i % n_items].filename,
                        "kind": "video",
                        "sha256": items[i % n_items].sha256,
                        "frames": [0.0, 4.0, 8.0],
                        "units": {"planned": 16, "used": 16},
                    }
                ],
            },
        )  # fmt: skip
        for i in range(n_answers)
    )
    AnswerMark.objects.bulk_create(
        AnswerMark(analysis=a, pinned=True, state="reviewed", updated_by=user) for a in answers
    )
    ReviewNote.objects.bulk_create(
        ReviewNote(case=case, analysis=a, text="Matches the log book.", author=user)
        for a in answers
    )
    return case


def measure(case, user, fmt: str) -> tuple[float, int, int]:
    """Time, size, and Python's peak allocation of one export (tracing slows Python down, so
    the time comes from an untraced run first)."""
    started = time.perf_counter()
    made = report.export(case, fmt=fmt, user=user)
    elapsed = time.perf_counter() - started
    if not TRACE:
        return elapsed, len(made.content), 0
    tracemalloc.start()
    report.export(case, fmt=fmt, user=user)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, len(made.content), peak


def main() -> None:
    global TRACE
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--formats", default="html,pdf")
    parser.add_argument("--trace", action="store_true", help="also Python's peak (slow)")
    args = parser.parse_args()
    TRACE = args.trace
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # no line per page laid out
    user = get_user_model().objects.create_user("bench", password="x")
    case = make_case(user, args.items, args.answers)
    print(f"database: {connection.vendor}; {args.items} items, {args.answers} answers")
    for fmt in args.formats.split(","):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elapsed, size, peak = measure(case, user, fmt)
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
        traced = f"  Python peak {peak / 2**20:6.1f} MiB" if TRACE else ""
        print(
            f"{fmt:4}: {elapsed:6.2f} s  {size / 1024:8.1f} KB  "
            f"peak RSS growth {rss / 2**20:6.1f} MiB{traced}"
        )


TRACE = False


if __name__ == "__main__":
    main()

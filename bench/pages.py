"""The case page with 5 media + 5 answers vs 500 media + 1,000 answers, side by side.

    .venv/bin/python bench/pages.py [--media 500] [--answers 1000] [--repeat 30]

Prints, for each case: median server time (Django test client), queries per request and
the page's HTML size; then the time ratio and whether the query counts are equal.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import _django

_django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from analysis.models import Analysis, AnswerMark, Case, MediaAsset  # noqa: E402

KINDS = ["image", "video", "audio", "document"]


def make_case(user, n_media: int, n_answers: int) -> Case:
    case = Case.create_with_owner(user=user, title=f"{n_media} items, {n_answers} answers")
    MediaAsset.objects.bulk_create(
        [
            MediaAsset(
                case=case,
                uploaded_by=user,
                filename=f"item-{i:04d}.png",
                kind=KINDS[i % 4],
                mime="image/png",
                detected="PNG image, 1920 × 1080",
                size=1_000_000 + i,
                sha256=uuid.uuid4().hex * 2,
                status="ready",
                derived={"thumbnail": "thumb.webp"},
                metadata={"width": 1920, "height": 1080},
            )  # fmt: skip
            for i in range(n_media)
        ]
    )
    answers = Analysis.objects.bulk_create(
        [
            Analysis(
                case=case,
                created_by=user,
                question=f"Question {i}: who is at the door?",
                status="succeeded",
                answer="A courier in a red jacket [00:00:04]. " * 8,
                model_name="tiny",
                completion_tokens=64,
            )  # fmt: skip
            for i in range(n_answers)
        ]
    )
    AnswerMark.objects.bulk_create(
        [AnswerMark(analysis=a, state="reviewed", updated_by=user) for a in answers[::3]]
    )
    return case


def measure(client: Client, url: str, repeat: int) -> tuple[float, int, int]:
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times), len(queries), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--media", type=int, default=500)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    user = get_user_model().objects.create_user("bench", password="x")
    small, big = make_case(user, 5, 5), make_case(user, args.media, args.answers)
    client = Client()
    client.force_login(user)
    urls = {"small": f"/cases/{small.id}/", "big": f"/cases/{big.id}/"}
    for url in urls.values():
        measure(client, url, 3)  # warm caches
    results: dict[str, list] = {}
    for _ in range(3):  # interleave so machine noise hits both sides alike
        for label, url in urls.items():
            results.setdefault(label, []).append(measure(client, url, max(1, args.repeat // 3)))
    (t_s, q_s, b_s), (t_b, q_b, b_b) = (min(results[k]) for k in ("small", "big"))
    print(f"database: {connection.vendor}")
    print(f"5 media + 5 answers:      {t_s * 1000:7.2f} ms  {q_s} queries  {b_s / 1024:6.1f} KB")
    print(
        f"{args.media} media + {args.answers} answers: {t_b * 1000:7.2f} ms  {q_b} queries  "
        f"{b_b / 1024:6.1f} KB"
    )
    print(f"ratio big/small: {t_b / t_s:.2f}x  (queries equal: {q_s == q_b})")


if __name__ == "__main__":
    main()

"""Case list server time with 10 vs 10,000 cases, measured side by side in one run.

    .venv/bin/python bench/case_list.py [--big 10000] [--repeat 30]

Prints the median server time for each size, the ratio, and the queries per request.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _django

_django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from analysis.models import Case, Membership  # noqa: E402


def make_user(name: str, n_cases: int):
    user = get_user_model().objects.create_user(name, password="x")
    for start in range(0, n_cases, 2000):
        batch = [
            Case(title=f"{name} case {i}", reference=f"{name}-{i:06d}", created_by=user)
            for i in range(start, min(n_cases, start + 2000))
        ]
        Case.objects.bulk_create(batch)
        Membership.objects.bulk_create(
            [Membership(case=c, user=user, role=Membership.Role.REVIEWER) for c in batch]
        )
    client = Client()
    client.force_login(user)
    return client


def measure(client: Client, repeat: int) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get("/")
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times), len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    small, big = make_user("small", 10), make_user("big", args.big)
    measure(small, 3), measure(big, 3)  # warm caches
    results = {}
    for _ in range(3):  # interleave so machine noise hits both sides alike
        for label, client in (("10", small), (str(args.big), big)):
            results.setdefault(label, []).append(measure(client, args.repeat // 3))
    (t_small, q_small), (t_big, q_big) = (min(results[k]) for k in ("10", str(args.big)))
    print(f"database: {connection.vendor}")
    print(f"10 cases:      {t_small * 1000:7.2f} ms  {q_small} queries")
    print(f"{args.big} cases: {t_big * 1000:7.2f} ms  {q_big} queries")
    print(f"ratio big/small: {t_big / t_small:.2f}x  (queries equal: {q_small == q_big})")


if __name__ == "__main__":
    main()

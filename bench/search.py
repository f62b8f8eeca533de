"""Search over 100,000 answers and 10,000 document pages: the full-text index vs LIKE.

    .venv/bin/python bench/search.py [--answers 100000] [--pages 10000] [--repeat 20]

Runs on SQLite (FTS5) by default, on PostgreSQL (GIN over a tsvector) with DATABASE_URL.
Fills the index through the real rows (SearchEntry), then times, side by side in one run,
`search.search()` for a few words (median and p95) and a plain `icontains` (LIKE) scan for
the same words over the same rows, restricted to the same visible cases.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import _django

_django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402

from analysis import search  # noqa: E402
from analysis.models import Case, SearchEntry  # noqa: E402

# Query words, each in about this share of the rows; the rest is a Zipf-like filler of
# 20,000 made-up words, so a query matches hundreds or thousands of rows, not all of them.
PLANTED = {"forklift": 0.01, "courier": 0.03, "jacket": 0.05, "signature": 0.02,
           "ledger": 0.004, "warehouse": 0.02, "pallet": 0.01}  # fmt: skip
QUERIES = ["forklift", "courier jacket", "signature ledger", "warehouse pallet", "zeppelin"]


def sentence(rng: random.Random, n: int) -> str:
    words = [f"w{int(rng.paretovariate(1.1)) % 20000}" for _ in range(n)]
    words += [word for word, share in PLANTED.items() if rng.random() < share]
    rng.shuffle(words)
    return " ".join(words)


def fill(user, n_answers: int, n_pages: int, n_cases: int = 50) -> list[Case]:
    rng = random.Random(7)
    cases = Case.objects.bulk_create(
        [Case(title=f"Case {i}", created_by=user) for i in range(n_cases)]
    )
    for kind, total, words in (("answer", n_answers, 40), ("page", n_pages, 300)):
        for start in range(0, total, 5000):
            rows = [
                SearchEntry(
                    case=cases[i % n_cases],
                    kind=kind,
                    title=f"{kind} {i}",
                    body=sentence(rng, words),
                    page=1 if kind == "page" else None,
                )  # fmt: skip
                for i in range(start, min(total, start + 5000))
            ]
            SearchEntry.objects.bulk_create(rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE analysis_searchentry")
    return cases


def like_scan(case_ids, query: str) -> int:
    words = query.split()
    condition = Q()
    for word in words:
        condition &= Q(title__icontains=word) | Q(body__icontains=word)
    # Every match, as a LIKE search must collect to rank or count them.
    rows = SearchEntry.objects.filter(condition, case_id__in=case_ids)
    return len(list(rows.values_list("id", flat=True)))


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    user = get_user_model().objects.create_user("bench", password="x")
    started = time.perf_counter()
    cases = fill(user, args.answers, args.pages)
    print(f"database: {connection.vendor}; indexed {args.answers} answers + {args.pages} pages "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    # The user sees 40 of the 50 cases: the visibility filter is part of every query.
    from analysis.models import Membership

    Membership.objects.bulk_create([Membership(case=c, user=user) for c in cases[:40]])
    visible = [c.id for c in cases[:40]]
    print(f"{'query':20} {'hits':>5} {'fts med':>9} {'fts p95':>9} {'LIKE med':>9} {'ratio':>7}")
    for query in QUERIES:
        hits = len(search.search(user, query))
        fts, like = [], []
        for _ in range(2):  # interleave so machine noise hits both sides alike
            fts += timed(lambda q=query: search.search(user, q), args.repeat // 2)
            like += timed(lambda q=query: like_scan(visible, q), max(1, args.repeat // 4))
        f_med, l_med = statistics.median(fts), statistics.median(like)
        print(f"{query:20} {hits:5d} {f_med * 1000:7.1f}ms {p95(fts) * 1000:7.1f}ms "
              f"{l_med * 1000:7.1f}ms {l_med / f_med:6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()

"""Kill the site's children over and over while answers stream, and count what survives.

    .venv/bin/python bench/chaos.py [--kills 50] [--pause 3] [--fast]

Runs the real `manage.py serve` (embedded Valkey, SQLite, the tiny Gemma 4 model; the
shipped recovery settings unless --fast) in a throwaway folder. Each round asks two questions,
waits until one streams, SIGKILLs the next child in turn (inference, worker, beat, web,
valkey), then measures, from the kill:

- *site*: until the sign-in page answers again;
- *resume*: until the answer that was streaming at the kill streams again (a new token batch
  in its log: a retry after an inference kill, the same attempt otherwise).

At the end it waits for every question to finish and reports asked / succeeded / failed with
a reason / lost (asked, then never finished nor queued: goal 0) / stuck (still queued or
running when the drain bound passes: goal 0), and whether what a reconnecting socket streamed
equals the saved answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.site_driver import FINISHED, Site, Watcher, wait  # noqa: E402

VICTIMS = ["inference", "worker", "beat", "web", "valkey"]
SHIPPED = {"ANALYSIS_HEARTBEAT_INTERVAL": "2", "ANALYSIS_STALE_AFTER": "10"}
SHIPPED |= {"ANALYSIS_SWEEP_INTERVAL": "5", "ANALYSIS_REDISPATCH_AFTER": "300"}
ANSWERS = {"GEMMA_MAX_TOKENS": "1000", "GEMMA_N_THREADS": "1"}
BOUND = 180  # seconds any one wait may take before the round counts as a failure to heal


def one_kill(site: Site, case: str, watcher: Watcher, victim: str, n: int) -> dict:
    batch = [
        site.ask(case, f"Round {n}: what does the line do before {victim} dies?") for _ in "ab"
    ]
    for analysis_id in batch:
        watcher.follow(analysis_id)
    if not wait(
        lambda: any(r["status"] == "running" and r["chunks"] for r in site.progress(batch)), BOUND
    ):
        return {"victim": victim, "asked": batch, "site": None, "resume": None}
    running = next(r for r in site.progress(batch) if r["status"] == "running" and r["chunks"])
    target = _id(running["id"])
    before = site.last_chunks().get(target, 0)
    mark = len(site.lines)
    killed = time.monotonic()
    old = site.kill(victim)
    # Back when the supervisor started a new one and the site answers.
    restarted = rf"started {victim} \(pid (?!{old}\b)\d+\)"
    up = site.wait_for([restarted], BOUND, since=mark) and wait(site.answers, BOUND, step=0.05)
    site_s = time.monotonic() - killed if up else None
    resumed = wait(
        lambda: site.last_chunks().get(target, 0) > before or _finished(site, target),
        BOUND,
        step=0.05,
    )
    resume_s = time.monotonic() - killed if resumed else None
    return {"victim": victim, "asked": batch, "site": site_s, "resume": resume_s}


def _finished(site: Site, analysis_id: str) -> bool:
    return site.rows()[analysis_id]["status"] in FINISHED


def _id(value: str) -> str:
    value = value.replace("-", "")
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def report(
    rounds: list[dict], site: Site, watcher: Watcher, asked: list[str], minutes: float
) -> None:
    rows = site.rows()
    ok = [a for a in asked if rows.get(a, {}).get("status") == "succeeded"]
    failed = [a for a in asked if rows.get(a, {}).get("status") == "failed" and rows[a]["error"]]
    lost = [a for a in asked if a not in rows]
    stuck = [a for a in asked if a in rows and rows[a]["status"] not in FINISHED]
    same = sum(watcher.text.get(a) == rows[a]["answer"] for a in ok)
    retried = sum(rows[a]["attempts"] > 1 for a in ok)
    print(
        f"\n{len(rounds)} kills in {minutes:.1f} min: asked {len(asked)}, succeeded {len(ok)} "
        f"({retried} after a retry), failed with a reason {len(failed)}, "
        f"lost {len(lost)}, stuck {len(stuck)}"
    )
    print(
        f"socket text == saved answer: {same} of {len(ok)}; socket reconnects {watcher.reconnects}"
    )
    for reason in sorted({rows[a]["error"][:100] for a in failed}):
        print(f"  failed: {reason}")
    head = f"{'site median':>12} {'site max':>9} {'resume median':>14} {'resume max':>9}"
    print(f"\n{'killed':<10} {'n':>3} {head}")
    for victim in [*VICTIMS, "all"]:
        mine = [r for r in rounds if victim in ("all", r["victim"])]
        if mine:
            print(
                f"{victim:<10} {len(mine):>3} {_stats(mine, 'site')} {_stats(mine, 'resume', 14)}"
            )


def _stats(rounds: list[dict], key: str, width: int = 12) -> str:
    values = [r[key] for r in rounds if r[key] is not None]
    missing = len(rounds) - len(values)
    if not values:
        return f"{'-':>{width}} {'-':>9}"
    text = f"{statistics.median(values):>{width - 1}.1f}s {max(values):>8.1f}s"
    return text + (f" ({missing} never)" if missing else "")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between rounds")
    parser.add_argument("--fast", action="store_true", help="the tests' shrunk recovery limits")
    args = parser.parse_args()
    env = ANSWERS | ({} if args.fast else SHIPPED)
    site = Site(Path(tempfile.mkdtemp(prefix="gemma-chaos-")), env)
    started = time.monotonic()
    rounds: list[dict] = []
    try:
        site.start()
        site.sign_in()
        case = site.create_case()
        watcher = Watcher(site, case).start()
        for n in range(args.kills):
            rounds.append(one_kill(site, case, watcher, VICTIMS[n % len(VICTIMS)], n))
            last = rounds[-1]
            print(
                f"kill {n + 1}/{args.kills} {last['victim']}: "
                f"site {last['site']}, resume {last['resume']}",
                flush=True,
            )
            time.sleep(args.pause)
        asked = [a for r in rounds for a in r["asked"]]
        wait(lambda: all(r["status"] in FINISHED for r in site.rows().values()), 600)
        wait(lambda: all(watcher.status.get(a) in FINISHED for a in asked), 60)
        watcher.stop()
        report(rounds, site, watcher, asked, (time.monotonic() - started) / 60)
    finally:
        code = site.stop()
        gave_up = "giving up" in "".join(site.lines)
        print(
            f"\nsupervisor exit {code}; processes left {len(site.leftovers())}; gave up {gave_up}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

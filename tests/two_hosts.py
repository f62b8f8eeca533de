"""A second "host" on this machine for the two-host test: a network namespace joined to this
one by a veth pair, and a relay that makes loopback services reachable from it.

    this namespace (web host)                 gw-gpu-<pid> (GPU host)
      PostgreSQL, Redis, SeaweedFS on 127.0.0.1
      relay on 10.231.N.1:<ports>  <── veth ──>  10.231.N.2: the inference worker

Only loopback and the pair's own two addresses are used. The worker runs in its own UTS and
mount namespaces too: its host name is its own, and the web host's MEDIA_ROOT is covered by
an empty tmpfs, so it can only get media over TCP, from the object store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import stop

ROOT = Path(__file__).resolve().parent.parent


def why_not() -> str:
    """Why network namespaces cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "the two-host test creates network namespaces: it needs root (CI runs as root)"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"the two-host test needs `{tool}` ({package}; .ci/run installs it)"
    return ""


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"{' '.join(args)}: {done.stderr.strip()}")


@dataclass
class GpuHost:
    """The namespace, its veth pair and the relay into this one."""

    name: str
    host_ip: str
    worker_ip: str
    relay: subprocess.Popen | None = None
    ports: list[int] = field(default_factory=list)

    @classmethod
    def create(cls) -> GpuHost:
        number = os.getpid() % 200 + 20  # one /30 per test process: sessions may run at once
        host = cls(f"gw-gpu-{os.getpid()}", f"10.231.{number}.1", f"10.231.{number}.2")
        outer, inner = f"gwh{os.getpid() % 100000}", f"gww{os.getpid() % 100000}"
        try:
            _run("ip", "netns", "add", host.name)
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", inner, "netns", host.name)
            _run("ip", "addr", "add", f"{host.host_ip}/30", "dev", outer)
            _run("ip", "link", "set", outer, "up")
            inside = ("ip", "netns", "exec", host.name)
            _run(*inside, "ip", "addr", "add", f"{host.worker_ip}/30", "dev", inner)
            _run(*inside, "ip", "link", "set", inner, "up")
            _run(*inside, "ip", "link", "set", "lo", "up")
        except OSError:
            host.remove()
            raise
        return host

    def forward(self, *targets: str) -> list[int]:
        """Relay host_ip:<free port> to each loopback `host:port`; the ports, in order."""
        pairs = [f"{self.host_ip}:0={target}" for target in targets]
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "tests.tcp_forward", *pairs],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.relay.stdout.readline().split()
        if not line or line[0] != "ready":
            raise OSError(f"the relay did not start: {line}")
        self.ports = [int(port) for port in line[1:]]
        return self.ports

    def command(self, hostname: str, hidden: Path, argv: list[str]) -> list[str]:
        """argv inside the namespace, under its own host name, with `hidden` covered."""
        script = f'mount -t tmpfs none {hidden} && hostname {hostname} && exec "$@"'
        return [
            "ip", "netns", "exec", self.name, "unshare", "--uts", "--mount",
            "sh", "-c", script, "sh", *argv,
        ]  # fmt: skip

    def remove(self) -> None:
        if self.relay is not None:
            stop(self.relay)
            self.relay = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        # Deleting the namespace deletes its end of the pair, and so the pair.

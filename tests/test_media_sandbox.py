"""The sandbox the media worker decodes in: limits on CPU, memory and time, no network, and
a worker that carries on after a child broke one."""

from __future__ import annotations

import os
import socket
import time

import pytest

from analysis.media import sandbox
from analysis.media.types import MediaRejected

# A wall time far above the CPU time: on a busy machine a child gets only part of a core.
LIMITS = sandbox.Limits(cpu_seconds=2, memory_bytes=256 * 2**20, wall_seconds=60.0)


def spin() -> None:
    deadline = time.monotonic() + 60  # bounded: the CPU limit stops it long before
    while time.monotonic() < deadline:
        pass


def balloon() -> None:
    hoard = []
    for _ in range(64):  # bounded: 4 GiB, far past the 256 MiB allowed
        hoard.append(bytearray(64 * 2**20))


def test_it_returns_what_the_function_returns():
    assert sandbox.run(lambda a, b: {"sum": a + b}, 2, 3, limits=LIMITS) == {"sum": 5}


def test_a_refusal_in_the_child_is_a_refusal_in_the_parent():
    def refuse():
        raise MediaRejected("not this one")

    with pytest.raises(MediaRejected, match="not this one"):
        sandbox.run(refuse, limits=LIMITS)


def test_a_spinning_decoder_is_stopped_by_the_cpu_limit():
    with pytest.raises(MediaRejected, match="more than 2 s of CPU"):
        sandbox.run(spin, limits=LIMITS)  # stopped, not left to its own 60 s


def test_an_allocation_without_bound_is_stopped_by_the_memory_limit():
    with pytest.raises(MediaRejected, match="more than 256 MiB of memory"):
        sandbox.run(balloon, limits=LIMITS)


def test_a_hang_is_stopped_at_the_wall_time():
    limits = sandbox.Limits(cpu_seconds=30, memory_bytes=2**28, wall_seconds=1.0)
    with pytest.raises(MediaRejected, match="longer than 1 s"):
        sandbox.run(time.sleep, 30, limits=limits)


def test_a_crash_is_a_refusal_not_a_dead_worker():
    with pytest.raises(MediaRejected, match="crashed.*SIGABRT"):
        sandbox.run(os.abort, limits=LIMITS)
    assert sandbox.run(lambda: "still here", limits=LIMITS) == "still here"


def test_an_unexpected_error_is_a_failure_with_its_reason():
    with pytest.raises(sandbox.Failed, match="ZeroDivisionError"):
        sandbox.run(lambda: 1 / 0, limits=LIMITS)


def test_the_child_has_no_network():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def connect() -> str:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            return f"refused: {exc}"
        return "connected"

    try:
        assert connect() == "connected"  # the parent can
        assert sandbox.run(connect, limits=LIMITS).startswith("refused")
    finally:
        server.close()

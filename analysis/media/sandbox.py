"""Run a decoder on an untrusted file in a child process under limits.

The media worker forks; the child drops what it may do before it touches the file: CPU
seconds (RLIMIT_CPU), address space beyond what it inherited (RLIMIT_AS), no core dumps,
and no network (a fresh, empty network namespace; where the kernel refuses one, Python's
sockets are disabled instead). The parent waits at most the wall-time limit, then kills it.
A child that breaks a limit, crashes or hangs ends as MediaRejected with the reason; the
parent, and so the worker, carries on. The result comes back through a pipe as JSON, never
pickled: a child a hostile file took over must not be able to run code in the parent.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import resource
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from analysis.media.types import MediaRejected

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
M_ARENA_MAX = -8
MAX_RESULT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int  # address space the child may add to what it inherited
    wall_seconds: float

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            cpu_seconds=settings.MEDIA_SANDBOX_CPU_SECONDS,
            memory_bytes=settings.MEDIA_SANDBOX_MEMORY_BYTES,
            wall_seconds=settings.MEDIA_SANDBOX_WALL_SECONDS,
        )


class Failed(Exception):
    """An unexpected error in the child (not a refusal): the item fails, the file stays."""


def run(function: Callable, *args, limits: Limits | None = None):
    """function(*args) in a sandboxed child; its return value (JSON: dicts, lists, strings,
    numbers), or its MediaRejected raised again here."""
    limits = limits or Limits.from_settings()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(write_end, function, args, limits)
    os.close(write_end)
    try:
        data, timed_out = _collect(read_end, limits.wall_seconds)
    finally:
        os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return _outcome(data, status, usage.ru_utime + usage.ru_stime, timed_out, limits)


def _child(fd: int, function: Callable, args: tuple, limits: Limits) -> None:
    code = 0
    try:
        confine(limits)
        try:
            result = ("ok", function(*args))
        except MediaRejected as exc:
            result = ("rejected", str(exc))
        except MemoryError:
            result = ("memory", "")
        except Exception as exc:  # noqa: BLE001 - carried to the parent as a failure
            result = ("error", f"{type(exc).__name__}: {exc}")
        payload = json.dumps(result).encode()
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
    except BaseException:  # noqa: BLE001 - nothing of the parent may run on in the child
        code = 70
    finally:
        os._exit(code)  # no atexit, no finalizers: the parent's connections stay its own


def confine(limits: Limits) -> None:
    faulthandler.disable()  # a decoder's crash is reported by the parent, not dumped here
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mallopt(M_ARENA_MAX, 2)  # a few decoder threads must not reserve 64 MiB each
    inherited = _address_space()
    resource.setrlimit(resource.RLIMIT_AS, (inherited + limits.memory_bytes,) * 2)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0 and libc.unshare(CLONE_NEWNET) != 0:
        _no_sockets()


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _no_sockets() -> None:
    def refuse(*args, **kwargs):
        raise OSError("no network in the media sandbox")

    socket.socket = refuse  # type: ignore[misc, assignment]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


def _collect(fd: int, wall: float) -> tuple[bytes, bool]:
    """What the child writes, until it closes the pipe or the wall-time limit passes."""
    deadline = time.monotonic() + wall
    parts, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"", True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return b"", True
        block = os.read(fd, 1024 * 1024)
        if not block:
            return b"".join(parts), False
        size += len(block)
        if size > MAX_RESULT:
            return b"", True
        parts.append(block)


def _outcome(data: bytes, status: int, cpu: float, timed_out: bool, limits: Limits):
    if timed_out:
        raise MediaRejected(
            f"Decoding the file took longer than {limits.wall_seconds:g} s: stopped."
        )
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu >= limits.cpu_seconds):
            raise MediaRejected(
                f"Decoding the file used more than {limits.cpu_seconds} s of CPU: stopped."
            )
        # Native decoders (PDFium, FFmpeg) abort when an allocation fails: the memory limit
        # is the usual cause of a crash here.
        raise MediaRejected(
            f"The decoder crashed on this file ({signal.Signals(number).name}; "
            f"it may have run out of its {limits.memory_bytes // 2**20} MiB of memory): "
            "not accepted."
        )
    if not data:
        raise MediaRejected("The decoder stopped on this file without an answer: not accepted.")
    try:
        state, value = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise MediaRejected("The decoder answered nonsense on this file: not accepted.") from exc
    if state == "ok":
        return value
    if state == "rejected":
        raise MediaRejected(value)
    if state == "memory":
        raise MediaRejected(
            f"Decoding the file needed more than {limits.memory_bytes // 2**20} MiB of memory: "
            "stopped."
        )
    raise Failed(value)

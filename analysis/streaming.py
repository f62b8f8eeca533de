"""The only door to the channel layer, and the keeper of the token log.

channels_redis is at-most-once: a message to a full channel or across a Redis blip is lost.
So tokens are batched (never one message per token), each batch is written to the database
with a sequence number *before* it is sent, and a browser that missed something asks for
everything after its last sequence number. The WebSocket is a fast path; the log is the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable

from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Max
from redis.exceptions import RedisError

from analysis.models import Analysis, AnalysisChunk

log = logging.getLogger(__name__)


class _LayerState:
    """Whether this process can reach the channel layer, as it last saw it.

    One log line when it goes away and one when it is back, not one per batch (a stream
    flushes 20 times a second); while it is away a send is tried at most every few seconds,
    so a decoding worker does not spend its time on a dead connection. Nothing is lost
    meanwhile: the token log has every batch and pages resume from it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.next_try = 0.0
        self.delay = 0.0

    def may_send(self) -> bool:
        return self.down_since is None or time.monotonic() >= self.next_try

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since, self.delay = now, 0.5
                log.warning("live updates paused, channel layer unreachable: %s", exc)
            else:
                self.delay = min(self.delay * 2, 5.0)
            self.next_try = now + self.delay

    def sent(self) -> None:
        with self._lock:
            if self.down_since is not None:
                away = time.monotonic() - self.down_since
                log.warning("live updates resumed, channel layer back after %.1f s", away)
                self.down_since = None


_layer_state = _LayerState()
# What the channel layer raises when Redis is away (redis-py's errors, refused sockets).
LAYER_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def layer_unreachable(exc: BaseException) -> None:
    """A consumer found the layer gone: one line for the process, not one per socket."""
    _layer_state.failed(exc)


def layer_reachable() -> None:
    _layer_state.sent()


def case_group(case_id) -> str:
    return f"case.{case_id}"


def user_group(user_id) -> str:
    """Every open socket of one user, whatever the case: closed together."""
    return f"user.{user_id}"


class Publisher:
    """Sends channel-layer messages from one background thread with its own event loop.

    The caller (the decode thread, a view) only hands the message over: `group_send` runs on
    a loop that lives as long as the process, so the layer's Redis connections stay open
    instead of one new connection per call (what `async_to_sync` costs), and the JSON the
    browsers get is encoded once here, not once per open socket. Messages keep their order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._pid = 0

    def _started(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child starts anew
                loop = asyncio.new_event_loop()
                queue: asyncio.Queue = asyncio.Queue()
                threading.Thread(
                    target=self._serve, args=(loop, queue), name="stream-publisher", daemon=True
                ).start()
                self._loop, self._queue, self._pid = loop, queue, os.getpid()
            return self._loop, self._queue

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(Publisher._pump(queue))

    @staticmethod
    async def _pump(queue: asyncio.Queue) -> None:
        while True:
            group, message = await queue.get()
            try:
                await Publisher._deliver(group, message)
            finally:
                queue.task_done()

    @staticmethod
    async def _deliver(group: str, message: dict) -> None:
        try:
            # Tests swap the layer between runs: look it up per message (a dict lookup).
            await get_channel_layer().group_send(group, _encoded(message))
        except LAYER_ERRORS as exc:
            _layer_state.failed(exc)
        except Exception:  # noqa: BLE001 - the stream must never break the job
            # A bug in one message (a value JSON cannot encode, a full channel) is not an
            # outage: the next message is sent as usual, and the log says what broke.
            log.exception("live update to %s not sent", group)
        else:
            _layer_state.sent()

    def send(self, group: str, message: dict) -> None:
        loop, queue = self._started()
        loop.call_soon_threadsafe(queue.put_nowait, (group, message))

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over was sent (end of a job: the final status)."""
        loop, queue = self._started()
        future = asyncio.run_coroutine_threadsafe(queue.join(), loop)
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            return False
        return True


publisher = Publisher()


def _encoded(message: dict) -> dict:
    """The browser's JSON, encoded once for every socket that forwards it."""
    client = {**message, "type": message["type"].removeprefix("analysis.")}
    return {**message, "json": json.dumps(client, separators=(",", ":"))}


def _send(case_id, message: dict) -> None:
    """Best effort by design: a lost message is recovered from the log on resume."""
    _send_to(case_group(case_id), message)


def _send_to(group: str, message: dict) -> None:
    if not _layer_state.may_send():
        return
    publisher.send(group, message)


def drain(timeout: float = 5.0) -> bool:
    return publisher.drain(timeout)


def status_message(analysis: Analysis) -> dict:
    return {
        "type": "analysis.status",
        "analysis": str(analysis.id),
        "status": analysis.status,
        "label": analysis.status_label,
        "attempt": analysis.attempts,
        "error": analysis.error,
        "batch": str(analysis.batch_id) if analysis.batch_id else None,
    }


def publish_status(analysis: Analysis) -> None:
    _send(analysis.case_id, status_message(analysis))


def media_status_message(asset) -> dict:
    return {
        "type": "media.status",
        "asset": str(asset.id),
        "status": asset.status,
        "reason": asset.status_reason,
        "hash_mismatch": asset.hash_mismatch,
    }


def publish_media_status(asset) -> None:
    """An item changed (processed, failed, deleted, hash mismatch): case pages re-fetch its card."""
    _send(asset.case_id, media_status_message(asset))


def revoke_access(case_id, user_id: int) -> None:
    """Close a user's open sockets on a case (membership removed)."""
    _send(case_id, {"type": "access.revoked", "user": user_id})


def close_user_sockets(user_id: int, session_key: str | None = None) -> None:
    """Close a user's open sockets: all of them (deactivated), or one session's (signed out).

    A fast path only: the layer may lose this, and every socket re-checks on its own anyway.
    """
    message = {"type": "access.revoked", "user": user_id, "session": session_key}
    _send_to(user_group(user_id), message)


def chunks_after(analysis: Analysis, after: int) -> list[dict]:
    """The token messages a client missed, in order, straight from the log."""
    rows = analysis.chunks.filter(seq__gt=after).order_by("seq").values_list("seq", "text")
    return [_tokens_message(analysis, seq, text) for seq, text in rows]


def _tokens_message(analysis: Analysis, seq: int, text: str, **live) -> dict:
    # The attempt tells a page that an answer started over (a retry): it drops the old text.
    return {
        "type": "analysis.tokens",
        "analysis": str(analysis.id),
        "attempt": analysis.attempts,
        "seq": seq,
        "text": text,
        **live,
    }


class TokenStream:
    """Collects tokens and flushes them as one log row + one message every `interval` s."""

    def __init__(
        self,
        analysis: Analysis,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.analysis = analysis
        self.interval = settings.STREAM_FLUSH_INTERVAL if interval is None else interval
        self.clock = clock
        self.seq = analysis.chunks.aggregate(last=Max("seq"))["last"] or 0
        self._buffer: list[str] = []
        self._last_flush = clock()
        self._started = self._last_flush
        self._first_at: float | None = None
        self.tokens = 0

    def push(self, token: str) -> None:
        self._buffer.append(token)
        self.tokens += 1
        if self._first_at is None:
            # The first token goes out at once: the reviewer sees the answer start.
            self._first_at = self.clock()
            self.flush()
        elif self.clock() - self._last_flush >= self.interval:
            self.flush()

    def _live(self, now: float) -> dict:
        """Speed and elapsed time, for the card while it streams (not kept in the log)."""
        decoding = now - (self._first_at or now)
        rate = (self.tokens - 1) / decoding if decoding > 0 and self.tokens > 1 else 0.0
        elapsed = round(now - self._started, 2)
        # "at": when the batch left, on the wall clock, so a viewer can tell its delay.
        return {"tokens": self.tokens, "rate": round(rate, 1), "elapsed": elapsed,
                "at": round(time.time(), 4)}  # fmt: skip

    def flush(self) -> None:
        now = self._last_flush = self.clock()
        text = "".join(self._buffer)
        if not text:
            return
        self._buffer.clear()
        self.seq += 1
        AnalysisChunk.objects.create(analysis=self.analysis, seq=self.seq, text=text)
        message = _tokens_message(self.analysis, self.seq, text, **self._live(now))
        _send(self.analysis.case_id, message)

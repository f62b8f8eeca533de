"""The only door to the channel layer, and the keeper of the token log.

channels_redis is at-most-once: a message to a full channel or across a Redis blip is lost.
So tokens are batched (never one message per token), each batch is written to the database
with a sequence number *before* it is sent, and a browser that missed something asks for
everything after its last sequence number. The WebSocket is a fast path; the log is the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
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


def _send(case_id, message: dict) -> None:
    """Best effort by design: a lost message is recovered from the log on resume."""
    _send_to(case_group(case_id), message)


def _send_to(group: str, message: dict) -> None:
    if not _layer_state.may_send():
        return
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # noqa: BLE001 - the stream must never break the job
        _layer_state.failed(exc)
    else:
        _layer_state.sent()


def status_message(analysis: Analysis) -> dict:
    return {
        "type": "analysis.status",
        "analysis": str(analysis.id),
        "status": analysis.status,
        "label": analysis.status_label,
        "attempt": analysis.attempts,
        "error": analysis.error,
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


def _tokens_message(analysis: Analysis, seq: int, text: str) -> dict:
    # The attempt tells a page that an answer started over (a retry): it drops the old text.
    return {
        "type": "analysis.tokens",
        "analysis": str(analysis.id),
        "attempt": analysis.attempts,
        "seq": seq,
        "text": text,
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

    def push(self, token: str) -> None:
        self._buffer.append(token)
        if self.clock() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        self._last_flush = self.clock()
        text = "".join(self._buffer)
        if not text:
            return
        self._buffer.clear()
        self.seq += 1
        AnalysisChunk.objects.create(analysis=self.analysis, seq=self.seq, text=text)
        _send(self.analysis.case_id, _tokens_message(self.analysis, self.seq, text))

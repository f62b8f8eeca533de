"""WebSocket for a case page: live analysis tokens and status for everyone watching the case."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from analysis import access, streaming
from analysis.models import Analysis


class _Verdicts:
    """The newest access verdict of each (user, session, case) in this process.

    One reviewer's sockets on one case (tabs, pages, a crowd of viewers on one account) would
    each run the same queries every interval: a re-check is several queries and a database
    connection, and fifty sockets re-checking kept the process's one sync thread busy while
    token batches waited behind it. They share the newest verdict instead.
    """

    LIMIT = 10_000

    def __init__(self) -> None:
        self._items: dict[tuple, tuple[float, access.CaseAccess | None]] = {}

    def get(self, key: tuple, max_age: float) -> tuple[float, access.CaseAccess | None] | None:
        hit = self._items.get(key)
        return hit if hit is not None and time.monotonic() - hit[0] < max_age else None

    def put(self, key: tuple, at: float, verdict: access.CaseAccess | None) -> None:
        if len(self._items) >= self.LIMIT:
            self._items.clear()  # only ever a cache: the next checks fill it again
        old = self._items.get(key)
        if old is None or old[0] <= at:
            self._items[key] = (at, verdict)


VERDICTS = _Verdicts()


class CaseConsumer(AsyncJsonWebsocketConsumer):
    watcher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        """While Redis is away the socket closes (the page says "Reconnecting…" and resumes
        from the token log later), with one log line for the outage, not a traceback a try."""
        try:
            await super().__call__(scope, receive, send)
        except streaming.LAYER_ERRORS as exc:
            streaming.layer_unreachable(exc)
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": 1011})

    async def connect(self) -> None:
        self.case_id = self.scope["url_route"]["kwargs"]["case_id"]
        self.group = streaming.case_group(self.case_id)
        user = self.scope["user"]
        self.user_group = streaming.user_group(user.pk) if user.is_authenticated else None
        if not await self._recheck(accepted=False):
            # Same answer as for a case that does not exist: close before accepting.
            await self.close()
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        streaming.layer_reachable()
        await self.accept()
        # The channel layer is at-most-once: a lost revocation must not keep a socket open,
        # so the socket re-checks on its own clock as well.
        self.watcher = asyncio.create_task(self._watch())

    async def disconnect(self, code: int) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        with contextlib.suppress(*streaming.LAYER_ERRORS):  # its key expires by itself
            await self.channel_layer.group_discard(self.group, self.channel_name)
            if self.user_group:
                await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # Access is checked on every message, not only at connect: membership can change.
        if not await self._recheck():
            return
        if (refusal := _refusal(content)) is not None:
            await self.send_json({"type": "error", **refusal})
            return
        missed = await self._missed(
            content["analysis"], content.get("attempt"), content.get("after", 0)
        )
        for message in missed:
            await self.send_json(_client_message(message))

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None  # answered as a refusal, not a crash of the socket

    async def analysis_tokens(self, event: dict) -> None:
        await self._forward(event)

    async def analysis_status(self, event: dict) -> None:
        await self._forward(event)

    async def media_status(self, event: dict) -> None:
        await self._forward(event)

    async def access_revoked(self, event: dict) -> None:
        """A member was removed, deactivated or signed out: their sockets close now."""
        if event["user"] != self.scope["user"].pk:
            return
        session = event.get("session")
        if session is None or session == self._session_key():
            await self.close()

    async def _watch(self) -> None:
        # Each socket re-checks before its verdict goes stale, so a token batch never waits
        # for a check (see _forward); the first wait is spread over the interval, so sockets
        # opened together (a page reload, many viewers) do not all check at the same moment.
        interval = settings.SOCKET_RECHECK_SECONDS
        await asyncio.sleep(interval * random.uniform(0.3, 0.8))  # noqa: S311 - not a secret
        while await self._recheck(shared=True):
            await asyncio.sleep(max(0.0, self.checked_at + interval * 0.8 - time.monotonic()))

    async def _forward(self, event: dict) -> None:
        # Nothing is forwarded on a verdict older than the re-check interval; a fresh one
        # is reused, so a token batch costs no query.
        stale = time.monotonic() - self.checked_at >= settings.SOCKET_RECHECK_SECONDS
        lapsed = self.access_until is not None and timezone.now() >= self.access_until
        if (stale or lapsed) and not await self._recheck(shared=not lapsed):
            return
        # The publisher encoded the JSON once for every socket on the case.
        if "json" in event:
            await self.send(text_data=event["json"])
        else:
            await self.send_json(_client_message(event))

    async def _recheck(self, accepted: bool = True, shared: bool = False) -> bool:
        """Ask access.py again; close the socket (when open) if the answer is now no.

        `shared`: a verdict another socket of the same session on this case got less than
        half an interval ago will do. Its age counts, not the moment it was reused, so no
        socket forwards on a verdict older than the interval either way.
        """
        key = (self.scope["user"].pk, self._session_key(), self.case_id)
        hit = VERDICTS.get(key, settings.SOCKET_RECHECK_SECONDS / 2) if shared else None
        if hit is not None:
            self.checked_at, found = hit
        else:
            self.checked_at = time.monotonic()
            found = await self._access()
            VERDICTS.put(key, self.checked_at, found)
        if found is None:
            if accepted:
                await self.close()
            return False
        # A break-glass grant ends on the clock: checked on every event without a query.
        self.access_until = found.break_glass.expires_at if found.break_glass else None
        return True

    def _session_key(self) -> str | None:
        session = self.scope.get("session")
        return session.session_key if session is not None else None

    @database_sync_to_async
    def _access(self) -> access.CaseAccess | None:
        return access.socket_access(self.scope["user"], self._session_key(), self.case_id)

    @database_sync_to_async
    def _missed(self, analysis_id, attempt, after) -> list[dict]:
        """Where the answer stands: its status (a retry may have started over) and the
        token batches after `after` (all of them when the page shows another attempt)."""
        try:
            analysis = Analysis.objects.get(pk=analysis_id, case_id=self.case_id)
            after = int(after) if attempt in (None, analysis.attempts) else 0
        except (Analysis.DoesNotExist, ValidationError, ValueError, TypeError):
            return []
        missed = streaming.chunks_after(analysis, after)
        status = streaming.status_message(analysis)
        # A final status comes last: the page then replaces the card with the saved answer.
        return [*missed, status] if analysis.is_finished else [status, *missed]


def _refusal(content) -> dict | None:
    """Why a message from the browser is not a valid resume request (strict types)."""
    if not isinstance(content, dict) or content.get("type") != "resume":
        return {"error": 'Send {"type": "resume", "analysis": ID, "attempt": N, "after": SEQ}.'}
    if not isinstance(content.get("analysis"), str):
        return {"field": "analysis", "error": "analysis must be an answer's id (a string)."}
    for field, value in (("after", content.get("after", 0)), ("attempt", content.get("attempt"))):
        if field == "attempt" and value is None:
            continue  # optional: the page may not know the attempt yet
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return {"field": field, "error": f"{field} must be a whole number, 0 or more."}
    return None


def _client_message(event: dict) -> dict:
    """Channel-layer event → the JSON the browser sees ("analysis.tokens" → "tokens")."""
    client = {**event, "type": event["type"].removeprefix("analysis.")}
    client.pop("json", None)
    return client

"""ASGI fast path for upload bodies: a tus PATCH to /cases/<c>/uploads/<u>/ streams to disk.

Django's ASGI handler reads a whole request body (into memory, then a temporary file) before
any view runs; for a PATCH that means every byte is received, spooled, read back, hashed and
written. Here the body goes from the socket straight into the partial file: blocks are handed
to a worker thread (hash + write) while the next block arrives, one in flight at a time, so
memory stays bounded and the event loop never waits on the disk or on SHA-256.

This is a thin door, not a second implementation. Everything Django does before and after a
view runs the same code: the MIDDLEWARE hooks in order (security, session, allowed hosts,
CSRF, authentication ...), `login_required`, `own_upload` (access.py: outsiders 404, viewers
403), exceptions turned into responses by Django's own handler, and replies built by the
view's helpers. The tus headers are read by analysis/media/tus.py, the chunk rules live in
analysis/media/uploads.py and chunks.py. Any other method goes to Django (a PUT: 405).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from functools import cache

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils.module_loading import import_string

from analysis.media import tus, uploads
from analysis.media.chunks import ChunkWriter
from analysis.media.types import MediaRejected
from analysis.views import uploads as views

URL_NAME = "media-upload"
# Hand blocks of about this size to the writer thread: a few thread hops per MiB at most,
# and at most two blocks (one being written, one filling) held per request.
BLOCK = 4 * 1024 * 1024
# Middleware that only wrap __call__ and have nothing to say about this route: WhiteNoise
# serves static files, django-htmx parses HX-* headers, django-axes turns a lockout raised
# while signing in into its page (no PATCH signs anyone in). Any other middleware without
# the process_* hooks is refused at start-up, so adding one forces a decision here.
CALL_ONLY = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django_htmx.middleware.HtmxMiddleware",
        "axes.middleware.AxesMiddleware",
    }
)
HOOKS = ("process_request", "process_view", "process_response")


class Disconnected(Exception):
    """The client went away (or the body-limit guard cut it off): no reply is sent."""


@cache
def middleware() -> tuple:
    """Instances of the project's MIDDLEWARE that have process_* hooks, in order."""
    found = []
    for path in settings.MIDDLEWARE:
        cls = import_string(path)
        if any(hasattr(cls, hook) for hook in HOOKS):
            found.append(cls(_never_called))
        elif path not in CALL_ONLY:
            raise RuntimeError(f"{path}: decide whether the upload fast path must run it")
    return tuple(found)


def _never_called(request):  # get_response of the hook-only middleware instances
    raise AssertionError("the fast path calls middleware hooks, never the chain")


def _admit(request: ASGIRequest, kwargs: dict) -> tuple[object, int]:
    """What Django would do before the view, then the view's checks and opening the PATCH's
    chunk.

    Returns (a response to send now, or the open ChunkWriter, hooks that ran).
    """
    ran = 0
    try:
        for mw in middleware():
            reply = mw.process_request(request) if hasattr(mw, "process_request") else None
            ran += 1  # after: a hook that raised gets no process_response, as in Django
            if reply:
                return reply, ran
        for mw in middleware():
            if hasattr(mw, "process_view") and (reply := mw.process_view(
                request, views.upload_detail, (), kwargs
            )):  # fmt: skip
                return reply, ran
        return login_required(_open)(request, **kwargs), ran
    except Exception as exc:  # Http404, PermissionDenied, DisallowedHost ... as Django does
        return response_for_exception(request, exc), ran


def _open(request: ASGIRequest, case_id, upload_id) -> object:
    upload = views.own_upload(request, case_id, upload_id)
    request.upload = upload
    try:
        first, last = tus.patch_span(request, upload.size)
        opened = uploads.open_chunk(upload, first, last, tus.checksum(request))
    except MediaRejected as exc:
        return views.patch_refused(upload, exc)
    if isinstance(opened, ChunkWriter):
        return opened
    return views.patch_accepted(upload, opened)


def _close(request: ASGIRequest, writer: ChunkWriter, failure: Exception | None, ran: int):
    """Confirm the chunk (or undo it) and build the reply while holding the lock; then the
    process_response hooks (one thread hop for all of it)."""
    upload = request.upload
    try:
        if failure is not None:
            writer.abort()
            raise failure
        done = uploads.close_chunk(upload, writer, request=request)
        response = views.patch_accepted(upload, done)
    except MediaRejected as exc:
        response = views.patch_refused(upload, exc)
    finally:
        writer.close()
    return _finish(request, response, ran)


def _finish(request: ASGIRequest, response: HttpResponse, ran: int) -> HttpResponse:
    """Django's process_response hooks, innermost first, for the hooks that ran."""
    for mw in reversed(middleware()[:ran]):
        if hasattr(mw, "process_response"):
            response = mw.process_response(request, response)
    return response


async def _stream(receive, writer: ChunkWriter) -> Exception | None:
    """Feed the body to the writer as it arrives. A refusal by the writer is returned once
    the rest of the body has been read and dropped (so the connection can be kept alive)."""
    pending: asyncio.Future | None = None
    blocks: list[bytes] = []
    size, more, failure = 0, True, None
    try:
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            more = message.get("more_body", False)
            if body := message.get("body", b""):
                blocks.append(body)
                size += len(body)
            if blocks and (size >= BLOCK or not more):
                if failure is None:
                    # One block in flight: order kept, memory bounded, and the client is
                    # slowed by TCP flow control when the disk or the hash falls behind.
                    failure, pending = await _settle(pending), None
                if failure is None:
                    pending = asyncio.ensure_future(asyncio.to_thread(writer.write, *blocks))
                blocks, size = [], 0
        return failure or await _settle(pending)
    finally:
        if pending is not None and not pending.done():
            # Never undo the chunk under a write still running in its thread.
            await asyncio.gather(pending, return_exceptions=True)


async def _settle(pending: asyncio.Future | None) -> Exception | None:
    if pending is None:
        return None
    try:
        await pending
    except MediaRejected as exc:
        return exc
    return None


def _abort(writer: ChunkWriter) -> None:
    try:
        writer.abort()
    finally:
        writer.close()


def _sync(function):
    # Not thread_sensitive: holding an upload's lock must never block Django's one thread
    # for sync views (a second PATCH to the same upload waits for the lock in its own thread).
    return database_sync_to_async(function, thread_sensitive=False)


class UploadPatch:
    """tus PATCHes of an upload go to the fast path; everything else to `app` (Django)."""

    def __init__(self, app: ASGIHandler) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        kwargs = self._route(scope)
        if kwargs is None:
            await self.app(scope, receive, send)
            return
        # A client gone (or cut off by the body-limit guard, which then answers 413): the
        # chunk was undone, nothing counts, no reply.
        with contextlib.suppress(Disconnected):
            await self._patch(scope, receive, send, kwargs)

    async def _patch(self, scope, receive, send, kwargs: dict) -> None:
        set_script_prefix(get_script_prefix(scope))
        request = ASGIRequest(scope, io.BytesIO())  # headers, cookies, META; body unread
        admitted, ran = await _sync(_admit)(request, kwargs)
        if isinstance(admitted, ChunkWriter):
            try:
                failure = await _stream(receive, admitted)
            except BaseException:
                await _sync(_abort)(admitted)
                raise
            response = await _sync(_close)(request, admitted, failure, ran)
        else:
            await _drain(receive)  # the reply does not need the body; keep-alive does
            response = await _sync(_finish)(request, admitted, ran)
        await self.app.send_response(response, send)

    @staticmethod
    def _route(scope) -> dict | None:
        if scope["type"] != "http" or scope.get("method") != "PATCH":
            return None
        path = scope["path"]
        root = scope.get("root_path", "")
        try:
            match = resolve(path[len(root) :] if root and path.startswith(root) else path)
        except Resolver404:
            return None
        return match.kwargs if match.url_name == URL_NAME else None


async def _drain(receive) -> None:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        more = message.get("more_body", False)

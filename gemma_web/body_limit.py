"""ASGI guard: a request body over its limit is refused while it streams in.

Django's ASGI handler reads the whole body into a temporary file before any view runs, so a
limit checked in a view comes too late: a client could fill the disk first. Here the bytes
are counted as they arrive. Upload bodies (a tus PATCH to .../uploads/<id>/) may carry
MEDIA_CHUNK_BYTES; every other request REQUEST_MAX_BODY_BYTES. Headers over
MAX_HEADER_BYTES are refused before the application sees the request.
"""

from __future__ import annotations

import json
import re

from django.conf import settings

UPLOAD_PATH = re.compile(r"/cases/[0-9a-f-]{36}/uploads/[0-9a-f-]{36}/$")


def limit_for(scope: dict) -> int:
    if scope.get("method") == "PATCH" and UPLOAD_PATH.search(scope.get("path", "")):
        return settings.MEDIA_CHUNK_BYTES
    return settings.REQUEST_MAX_BODY_BYTES


def declared_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# uvicorn's httptools parser sets no bound on header size; browsers send a few KiB.
MAX_HEADER_BYTES = 32 * 1024


def header_bytes(scope: dict) -> int:
    return sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))


class BodyLimit:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if header_bytes(scope) > MAX_HEADER_BYTES:
            await refuse(send, MAX_HEADER_BYTES, status=431, what="The request headers are")
            return
        limit = limit_for(scope)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await refuse(send, limit)  # before reading a byte of it
            return
        state = {"received": 0, "over": False, "started": False}

        async def counted_receive() -> dict:
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    # Django drops a request whose client "went away": nothing is spooled.
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)
        if state["over"] and not state["started"]:
            await refuse(send, limit)


async def refuse(send, limit: int, status: int = 413, what: str = "The request body is") -> None:
    body = json.dumps({"error": f"{what} over the {limit}-byte limit."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

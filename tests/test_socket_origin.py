"""WebSocket origin: scheme, host and port must match this site (or a trusted origin)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from gemma_web.ws_origin import origin_allowed


def scope(origin: str | None, host: str = "localhost", scheme: str = "ws", **headers) -> dict:
    sent = [(b"host", host.encode())]
    if origin is not None:
        sent.append((b"origin", origin.encode()))
    sent += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": sent}


@pytest.mark.parametrize(
    "origin, host, scheme, allowed",
    [
        ("http://localhost", "localhost", "ws", True),
        ("http://localhost:8000", "localhost:8000", "ws", True),
        ("https://localhost", "localhost", "wss", True),
        ("http://127.0.0.1:8000", "127.0.0.1:8001", "ws", False),  # another port, same host
        ("http://localhost:8001", "localhost", "ws", False),
        ("https://localhost", "localhost", "ws", False),  # another scheme
        ("http://localhost", "localhost", "wss", False),
        ("http://evil.example", "localhost", "ws", False),
        ("http://evil.example", "evil.example", "ws", False),  # a host the site does not serve
        (None, "localhost", "ws", False),
        ("null", "localhost", "ws", False),
        ("http://localhost/page", "localhost", "ws", False),
        ("http://user@localhost", "localhost", "ws", False),
    ],
)
def test_the_origin_must_match_scheme_host_and_port(origin, host, scheme, allowed):
    assert origin_allowed(scope(origin, host, scheme)) is allowed


def test_a_trusted_origin_behind_a_tls_proxy(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://review.example.org", "https://*.cases.example.org"]
    assert origin_allowed(scope("https://review.example.org"))
    assert origin_allowed(scope("https://team.cases.example.org"))
    assert not origin_allowed(scope("https://review.example.org:8443"))
    assert not origin_allowed(scope("http://review.example.org"))
    assert not origin_allowed(scope("https://cases.example.org.evil.example"))


def test_the_proxy_header_says_which_scheme_the_page_used(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope("https://localhost", x_forwarded_proto="https"))
    assert not origin_allowed(scope("https://localhost"))
    assert not origin_allowed(scope("http://localhost", x_forwarded_proto="https"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin, connects",
    [
        (b"http://localhost:8000", True),
        (b"http://localhost:8001", False),
        (b"https://localhost:8000", False),
    ],
)
async def test_a_member_from_another_origin_cannot_open_the_case_socket(people, origin, connects):
    from gemma_web.asgi import application

    client = Client()
    await sync_to_async(client.force_login)(people.alice)
    headers = [
        (b"origin", origin), (b"host", b"localhost:8000"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]  # fmt: skip
    socket = WebsocketCommunicator(application, f"/ws/cases/{people.case.id}/", headers=headers)
    connected, _ = await socket.connect()
    await socket.disconnect()
    assert connected is connects

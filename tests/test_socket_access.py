"""Only people who may see a case can open its socket; everyone else is closed at once."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from gemma_web.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user, case_id, origin=b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    socket = WebsocketCommunicator(application, f"/ws/cases/{case_id}/", headers=headers)
    connected, _ = await socket.connect()
    await socket.disconnect()
    return connected


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
async def test_members_connect(people, who):
    assert await connect(getattr(people, who), people.case.id)


@pytest.mark.parametrize("who", ["mallory", "admin", None])
async def test_others_are_refused(people, who):
    user = getattr(people, who) if who else None
    assert not await connect(user, people.case.id)


async def test_a_guessed_case_id_is_refused(people):
    assert not await connect(people.alice, uuid.uuid4())


async def test_a_foreign_origin_is_refused(people):
    assert not await connect(people.alice, people.case.id, origin=b"https://evil.example")

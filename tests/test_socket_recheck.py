"""Live sockets re-check access on their own: a lost channel-layer message loses nothing."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from analysis import access, streaming, users
from analysis.models import Analysis, Membership
from gemma_web.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
RECHECK = 0.5


@pytest.fixture(autouse=True)
def _fast_recheck(settings):
    settings.SOCKET_RECHECK_SECONDS = RECHECK


@pytest.fixture
def dropped(monkeypatch):
    """The channel layer loses every revocation (it is at-most-once): what still closes?"""
    lost: list[dict] = []
    send = streaming._send_to

    def lossy(group, message):
        if message["type"] == "access.revoked":
            lost.append(message)
            return
        send(group, message)

    monkeypatch.setattr(streaming, "_send_to", lossy)
    return lost


async def signed_in(user) -> Client:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return client


async def open_socket(client: Client, case_id) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    socket = WebsocketCommunicator(application, f"/ws/cases/{case_id}/", headers=headers)
    assert (await socket.connect())[0]
    return socket


async def closes(socket: WebsocketCommunicator) -> bool:
    # The re-check runs every RECHECK s; 5 s is ten intervals, never a measured time.
    return (await socket.receive_output(timeout=5))["type"] == "websocket.close"


async def deactivate(people, user) -> None:
    admin = await signed_in(people.admin)
    url = reverse("staff-user-active", args=[user.pk])
    response = await sync_to_async(admin.post)(url, {"active": "0"})
    assert response.status_code == 302


async def test_deactivating_a_user_closes_both_open_sockets(people):
    bob = await signed_in(people.bob)
    first, second = await open_socket(bob, people.case.id), await open_socket(bob, people.case.id)
    await deactivate(people, people.bob)
    assert await closes(first) and await closes(second)


async def test_they_close_even_when_the_channel_layer_drops_the_message(people, dropped):
    bob = await signed_in(people.bob)
    first, second = await open_socket(bob, people.case.id), await open_socket(bob, people.case.id)
    await deactivate(people, people.bob)
    assert dropped, "the revocation was sent (and dropped on purpose)"
    assert await closes(first) and await closes(second)


async def test_a_removed_member_closes_when_the_message_is_lost(people, dropped):
    carol = await signed_in(people.carol)
    socket = await open_socket(carol, people.case.id)
    await Membership.objects.filter(case=people.case, user=people.carol).adelete()
    assert await closes(socket)


async def test_signing_out_closes_that_sessions_sockets(people):
    carol = await signed_in(people.carol)
    socket = await open_socket(carol, people.case.id)
    other = await open_socket(await signed_in(people.carol), people.case.id)
    await sync_to_async(carol.post)(reverse("logout"))
    assert await closes(socket)
    # Another device's session stays signed in and keeps its socket.
    assert await other.receive_nothing(timeout=RECHECK * 3)
    await other.disconnect()


async def test_a_sign_out_whose_message_is_lost_still_closes(people, dropped):
    carol = await signed_in(people.carol)
    socket = await open_socket(carol, people.case.id)
    await sync_to_async(carol.post)(reverse("logout"))
    assert dropped and await closes(socket)


async def test_ended_sessions_close_their_sockets(people, dropped):
    bob = await signed_in(people.bob)
    socket = await open_socket(bob, people.case.id)
    await sync_to_async(users.end_sessions_and_sockets)(people.bob)
    assert await closes(socket)


async def test_token_batches_do_not_query_access_each_time(people, settings, monkeypatch):
    settings.SOCKET_RECHECK_SECONDS = 60  # no re-check falls due during the burst
    calls = []
    original = access.socket_access

    def counted(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(access, "socket_access", counted)
    alice = await signed_in(people.alice)
    socket = await open_socket(alice, people.case.id)
    analysis = await Analysis.objects.acreate(case=people.case, created_by=people.bob, question="Q")
    for seq in range(1, 31):
        message = streaming._tokens_message(analysis, seq, f"t{seq} ")
        await sync_to_async(streaming._send)(people.case.id, message)
    for seq in range(1, 31):
        assert (await socket.receive_json_from(timeout=5))["seq"] == seq
    assert len(calls) == 1  # the check at connect; 30 batches forwarded on its verdict
    await socket.disconnect()


def test_a_shared_verdict_keeps_its_own_age():
    from analysis.consumers import _Verdicts

    verdicts, key = _Verdicts(), (1, "session", "case")
    verdicts.put(key, time.monotonic() - 2.0, "yes")
    # Reused only while young enough, and with the time it was found, not the time of reuse.
    assert verdicts.get(key, max_age=1.0) is None
    at, verdict = verdicts.get(key, max_age=3.0)
    assert verdict == "yes" and time.monotonic() - at >= 2.0
    verdicts.put(key, time.monotonic() - 5.0, "older news")  # a slower check ending later
    assert verdicts.get(key, max_age=3.0)[1] == "yes"
    assert verdicts.get((2, "session", "case"), max_age=3.0) is None  # another account

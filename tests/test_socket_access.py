"""Only people who may see a case can open its socket; everyone else is closed at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests.base import case_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user, case_id, origin=b"http://localhost"):
    socket = await case_socket(user, case_id, origin)
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


async def test_removing_a_member_closes_their_open_socket(people):
    from django.urls import reverse

    from analysis.models import Membership

    socket = await case_socket(people.carol, people.case.id)
    assert (await socket.connect())[0]

    owner = Client()
    await sync_to_async(owner.force_login)(people.alice)
    membership = await Membership.objects.aget(case=people.case, user=people.carol)
    url = reverse("member-remove", args=[people.case.id, membership.id])
    await sync_to_async(owner.post)(url)
    assert (await socket.receive_output(timeout=5))["type"] == "websocket.close"


async def test_an_expired_break_glass_socket_closes_on_the_next_event(people):
    from datetime import timedelta

    from django.utils import timezone

    from analysis import streaming
    from analysis.models import Analysis, BreakGlass

    soon = timezone.now() + timedelta(seconds=1)
    await BreakGlass.objects.acreate(
        case=people.case, user=people.admin, reason="Audit", expires_at=soon
    )
    socket = await case_socket(people.admin, people.case.id)
    assert (await socket.connect())[0]
    analysis = await Analysis.objects.acreate(case=people.case, created_by=people.bob, question="Q")
    await asyncio.sleep(1.1)
    await sync_to_async(streaming.publish_status)(analysis)
    assert (await socket.receive_output(timeout=5))["type"] == "websocket.close"


@pytest.mark.slow
async def test_an_idle_socket_stays_open_and_still_receives(people):
    # redis-py 8 reads with a 5 s socket timeout, as long as channels_redis' blocking pop:
    # without a longer timeout on the layer, an idle consumer crashed every few seconds.
    from analysis import streaming
    from analysis.models import Analysis

    socket = await case_socket(people.alice, people.case.id)
    assert (await socket.connect())[0]
    await asyncio.sleep(7)
    analysis = await Analysis.objects.acreate(case=people.case, created_by=people.bob, question="Q")
    await sync_to_async(streaming.publish_status)(analysis)
    message = await socket.receive_json_from(timeout=5)
    assert message["analysis"] == str(analysis.id)
    await socket.disconnect()

"""The case socket takes one kind of message, with strict types; anything else gets an
error naming the field, and the socket stays open."""

from __future__ import annotations

import json

import pytest

from analysis.models import Analysis
from tests.base import case_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "message, field",
    [
        ({"type": "resume", "analysis": 7, "after": 0}, "analysis"),
        ({"type": "resume", "analysis": "x", "after": "3"}, "after"),
        ({"type": "resume", "analysis": "x", "after": True}, "after"),
        ({"type": "resume", "analysis": "x", "after": -1}, "after"),
        ({"type": "resume", "analysis": "x", "after": 1.5}, "after"),
        ({"type": "resume", "analysis": "x", "attempt": "2", "after": 0}, "attempt"),
        ({"type": "shout"}, None),
        ([1, 2], None),
        ("not json{", None),
    ],
)
async def test_a_bad_message_is_refused_naming_the_field(people, message, field):
    socket = await case_socket(people.bob, people.case.id)
    assert (await socket.connect())[0]
    await socket.send_to(text_data=message if isinstance(message, str) else json.dumps(message))
    reply = await socket.receive_json_from(timeout=10)
    assert reply["type"] == "error" and reply.get("field") == field
    # Still open and serving: a valid resume is answered.
    analysis = await Analysis.objects.acreate(case=people.case, created_by=people.bob, question="Q")
    await analysis.arefresh_from_db()
    await socket.send_json_to(
        {"type": "resume", "analysis": str(analysis.id), "attempt": 0, "after": 0}
    )
    assert (await socket.receive_json_from(timeout=10))["type"] == "status"  # where it stands
    await socket.disconnect()

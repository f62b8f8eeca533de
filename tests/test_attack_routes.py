"""Every URL pattern and WebSocket route, attacked with another case's ids.

Routes are enumerated from the URL configuration (tests/routes.py): a route added anywhere
is attacked here with no edit. Each attacker (an outsider who owns a case of her own, a viewer
of that case, a staff member without break-glass) sends every method to every route that takes
an id, filled with the victim case's real ids, and with those ids under the attacker's own case
(IDOR). The reply must be a refusal, the same one as for ids that exist nowhere (so it tells
nothing), must show nothing of the victim case, and the database must not change.
"""

from __future__ import annotations

import json

import pytest

from tests import attack_world, routes
from tests.base import case_socket

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")
REFUSALS = {403, 404, 405}  # 403: his own role in his own case (the same for unknown ids)
# Everything a form or JSON API of the site could want, so an unguarded view would act.
PAYLOAD = {
    "action": "close", "user": "mallory", "role": "owner", "question": "Leak it?",
    "title": "Taken", "reference": "2026-X-1", "reason": "Curious", "filename": "a.png",
    "size": 10, "name": "pwn", "gguf_path": "/etc/passwd", "n_ctx": 512, "n_gpu_layers": 0,
    "n_threads": 0, "temperature": 0, "top_k": 1, "top_p": 1, "default": "on",
}  # fmt: skip
# Staff doors by design: the break-glass form (metadata, tests/test_case_access.py), the
# staff case list (metadata only), the admins' user pages (tests/test_staff_users.py), and
# retention: admins hold any case, decide early deletions, read run certificates (ids only).
STAFF_DOORS = {
    "break-glass", "staff-case-list", "case-hold-place", "case-hold-lift", "staff-retention",
    "deletion-request-decide", "purge-run-certificate", "staff-users", "staff-user-invite",
    "staff-unlock",
    "staff-user", "staff-user-active", "staff-user-roles", "staff-user-password",
    "staff-user-two-factor",
}  # fmt: skip
HTTP = routes.http_routes()
WITH_IDS = [r for r in HTTP if r.params]
WITHOUT_IDS = [r for r in HTTP if not r.params]


@pytest.fixture
def world(people, django_user_model, monkeypatch):
    return attack_world.build(people, django_user_model, monkeypatch)


def send(client, method: str, url: str):
    if method == "get":
        return client.get(url)
    if method == "post":
        return client.post(url, PAYLOAD)
    return getattr(client, method)(url, json.dumps(PAYLOAD), content_type="application/json")


def test_the_enumeration_finds_the_routes():
    names = {r.name for r in HTTP}
    assert {"case-detail", "media-upload", "media-derived", "model-edit", "login"} <= names
    assert [r.name for r in routes.websocket_routes()] == ["ws-case"]


@pytest.mark.parametrize("route", WITH_IDS, ids=lambda r: r.name)
def test_another_cases_ids_are_refused_and_change_nothing(world, client, route):
    real = routes.values_for(route, world.victim)
    nowhere = routes.random_values(route)
    for role, user in world.attackers.items():
        if role == "staff" and route.name in STAFF_DOORS:
            continue
        client.force_login(user)
        variants = [(real, nowhere)]
        if "case_id" in route.params and len(route.params) > 1:  # IDOR through her own case
            own = {"case_id": world.own.pk}
            variants.append(({**real, **own}, {**nowhere, **own}))
        before = attack_world.snapshot()
        for values, control in variants:
            for method in METHODS:
                reply = send(client, method, route.url(values))
                expected = send(client, method, route.url(control)).status_code
                where = f"{role} {method.upper()} {route.url(values)}"
                assert reply.status_code in REFUSALS, f"{where}: {reply.status_code}"
                assert reply.status_code == expected, f"{where}: differs from unknown ids"
                body = reply.content.decode(errors="replace")
                assert not any(s in body for s in attack_world.SECRETS), f"{where}: leaks"
        assert attack_world.snapshot() == before, f"{role} on {route.name} changed the database"


@pytest.mark.parametrize("route", WITHOUT_IDS, ids=lambda r: r.name)
def test_pages_without_ids_show_nothing_of_another_case(world, client, route):
    for role, user in world.attackers.items():
        if role == "staff" and route.name in STAFF_DOORS:
            continue
        client.force_login(user)
        reply = client.get("/" + route.pattern)
        body = reply.content.decode(errors="replace")
        assert not any(s in body for s in attack_world.SECRETS), f"{role} on {route.name}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", routes.websocket_routes(), ids=lambda r: r.name)
async def test_websockets_refuse_another_cases_ids(world, route):
    from asgiref.sync import sync_to_async

    real = await sync_to_async(routes.values_for)(route, world.victim)
    sockets = [
        (role, values, await case_socket(user, None, path=route.url(values)))
        for role, user in world.attackers.items()
        for values in (real, routes.random_values(route))
    ]  # signed in first: signing in writes last_login
    before = await sync_to_async(attack_world.snapshot)()
    for role, values, socket in sockets:
        connected, _ = await socket.connect()
        await socket.disconnect()
        assert not connected, f"{role} connected to {route.url(values)}"
    assert await sync_to_async(attack_world.snapshot)() == before

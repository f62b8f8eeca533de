"""CSRF on every unsafe method of every route: refused, and nothing changes.

The case's own owner (every right) sends each unsafe method to each enumerated route with the
victim case's real ids, once without a token and once with a token that does not match the
cookie. Django's CSRF middleware must refuse all of them before any view acts.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests import attack_world, routes
from tests.test_attack_routes import PAYLOAD

pytestmark = pytest.mark.django_db
UNSAFE = ("post", "put", "patch", "delete")


@pytest.fixture
def world(people, django_user_model, monkeypatch):
    return attack_world.build(people, django_user_model, monkeypatch)


def attempts(client: Client, url: str):
    for method in UNSAFE:
        if method == "post":
            yield method, client.post(url, PAYLOAD)
        else:
            body = json.dumps(PAYLOAD)
            yield method, getattr(client, method)(url, body, content_type="application/json")


@pytest.mark.parametrize("route", routes.http_routes(), ids=lambda r: r.name)
@pytest.mark.parametrize("token", ["none", "mismatched"])
def test_unsafe_methods_without_a_valid_csrf_token_are_refused(world, route, token):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    if token == "mismatched":
        client.cookies["csrftoken"] = "a" * 32
        client.defaults["HTTP_X_CSRFTOKEN"] = "b" * 32
    url = route.url(routes.values_for(route, world.victim))
    before = attack_world.snapshot()
    for method, reply in attempts(client, url):
        assert reply.status_code == 403, f"{method.upper()} {url}: {reply.status_code}"
        assert b"CSRF" in reply.content, f"{method.upper()} {url}: refused, but not for CSRF"
    assert attack_world.snapshot() == before, f"{route.name} changed the database"

"""Every response of the app carries the site's CSP, Permissions-Policy, Referrer-Policy,
COOP/CORP and `Cache-Control: private, no-store`; none of its CSP allows inline code, eval
or another origin."""

from __future__ import annotations

import pytest

from tests import attack_world, routes
from tests.test_upload_asgi import Browser, new_upload

pytestmark = pytest.mark.django_db
FORBIDDEN_SOURCES = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:")


@pytest.fixture
def world(people, django_user_model, monkeypatch):
    return attack_world.build(people, django_user_model, monkeypatch)


def policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        if words := part.split():
            directives[words[0]] = words[1:]
    return directives


def assert_hardened(headers, where: str) -> None:
    csp = policy(headers["Content-Security-Policy"])
    assert "default-src" in csp, where
    for directive, sources in csp.items():
        for source in sources:
            assert source not in FORBIDDEN_SOURCES, f"{where}: {directive} {source}"
            assert "://" not in source and not source.endswith(":"), f"{where}: {source}"
    if "script-src" in csp:
        assert csp["script-src"] == ["'self'"], where
    assert headers["Cache-Control"] == "private, no-store", where
    assert "camera=()" in headers["Permissions-Policy"], where
    assert headers["Referrer-Policy"] == "same-origin", where
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin", where
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin", where
    assert headers["X-Content-Type-Options"] == "nosniff", where
    assert headers["X-Frame-Options"] == "DENY", where


@pytest.mark.parametrize("route", routes.http_routes(), ids=lambda r: r.name)
def test_every_response_is_hardened(world, client, route):
    """As the case's owner (and a superuser for the staff pages): real pages, not refusals."""
    world.owner.is_staff = world.owner.is_superuser = True
    world.owner.save()
    client.force_login(world.owner)
    url = route.url(routes.values_for(route, world.victim))
    for reply in (client.get(url), client.put(url)):
        assert_hardened(reply, f"{reply.request['REQUEST_METHOD']} {url} {reply.status_code}")


def test_the_case_page_is_a_real_page_under_the_policy(world, client):
    client.force_login(world.owner)
    reply = client.get(f"/cases/{world.victim.pk}/")
    assert reply.status_code == 200 and b"Transaction 4411" in reply.content
    assert_hardened(reply, "case page")
    body = reply.content.decode()
    assert "<script>" not in body and " style=" not in body and " onclick=" not in body
    assert '"includeIndicatorStyles": false' in body  # htmx adds no <style> of its own


@pytest.mark.django_db(transaction=True)
def test_patch_replies_of_the_asgi_fast_path_are_hardened(client, people, settings):
    settings.MEDIA_CHUNK_BYTES = 1024
    data = b"Minutes of the meeting.\n" * 10
    url = new_upload(client, people, data, "notes.txt")
    reply = Browser(client, people.bob).patch(url, data, 0)
    assert reply.status_code == 204
    headers = {k.title(): v for k, v in reply.headers.items()}
    assert_hardened(headers, "tus PATCH")

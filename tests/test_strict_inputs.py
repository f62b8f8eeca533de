"""Strict inputs: the upload API checks types and ranges and names the field; views answer
only their methods; expected refusals log one line; one pixel limit in every refusal."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.urls import reverse

from analysis.models import MediaUpload
from tests import media_samples as samples
from tests import routes
from tests.media_api import assert_rejected, checked, upload

pytestmark = pytest.mark.django_db


def start(client, case, body, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(reverse("media-upload-create", args=[case.id]), data, content_type)


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"filename": "a.png", "size": "10"}, "size", "whole number, not a string"),
        ({"filename": "a.png", "size": 1.5}, "size", "whole number, not a number"),
        ({"filename": "a.png", "size": True}, "size", "whole number, not true/false"),
        ({"filename": "a.png", "size": -1}, "size", "must not be negative"),
        ({"filename": "a.png"}, "size", "size is required"),
        ({"filename": ["a.png"], "size": 10}, "filename", "string, not a list"),
        ({"filename": {"x": 1}, "size": 10}, "filename", "string, not an object"),
        ({"size": 10}, "filename", "filename is required"),
        ({"filename": "a.png", "size": 10, "sha256": 7}, "sha256", "string"),
        ({"filename": "a.png", "size": 10, "sha256": "f" * 65}, "sha256", "longer than 64"),
    ],
)
def test_a_wrong_type_or_range_is_400_naming_the_field(client, people, body, field, words):
    client.force_login(people.bob)
    reply = start(client, people.case, body)
    assert reply.status_code == 400, reply.content
    assert reply.json()["field"] == field
    assert words in reply.json()["error"]
    assert not MediaUpload.objects.exists()


@pytest.mark.parametrize(
    "body, status",
    [("[1, 2]", 400), ('"x"', 400), ("{not json", 400), (b"\xff\xfe", 400)],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, people, body, status):
    client.force_login(people.bob)
    assert start(client, people.case, body).status_code == status
    assert not MediaUpload.objects.exists()


def test_a_form_encoded_body_is_415(client, people):
    client.force_login(people.bob)
    reply = client.post(
        reverse("media-upload-create", args=[people.case.id]), {"filename": "a", "size": "1"}
    )
    assert reply.status_code == 415 and "application/json" in reply.json()["error"]


def test_a_valid_request_still_starts_an_upload(client, people):
    client.force_login(people.bob)
    reply = start(client, people.case, {"filename": "a.png", "size": 10, "sha256": ""})
    assert reply.status_code == 201 and MediaUpload.objects.count() == 1


# Routes that take PUT, PATCH or DELETE, and which. A new route that does must be added here.
OTHER_METHODS = {"media-upload": {"put", "patch", "delete"}}  # tus PATCH, JSON PUT


@pytest.mark.parametrize("route", routes.http_routes(), ids=lambda r: r.name)
def test_views_answer_only_their_methods(people, client, route, monkeypatch):
    from tests import attack_world

    world = attack_world.build(people, people.alice.__class__, monkeypatch)
    people.alice.is_staff = people.alice.is_superuser = True
    people.alice.save()
    client.force_login(people.alice)
    url = route.url(routes.values_for(route, world.victim))
    for method in {"put", "patch", "delete"} - OTHER_METHODS.get(route.name, set()):
        reply = getattr(client, method)(url)
        assert reply.status_code == 405, f"{method.upper()} {route.name}: {reply.status_code}"


def console_output(client, url: str) -> str:
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        client.get(url)
    finally:
        handler.setStream(old)
    return stream.getvalue()


def test_an_expected_refusal_logs_one_line(client, people):
    client.force_login(people.carol)  # a viewer may not edit the case: 403
    logged = console_output(client, reverse("case-edit", args=[people.case.id]))
    assert "Forbidden (Permission denied)" in logged
    assert logged.count("\n") == 1 and "Traceback" not in logged, logged
    client.force_login(people.mallory)  # an outsider: 404
    logged = console_output(client, reverse("case-edit", args=[people.case.id]))
    assert "Not Found" in logged and logged.count("\n") == 1, logged


def test_a_server_error_keeps_its_traceback():
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("django.request").error(
                "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
            )
    finally:
        handler.setStream(old)
    assert "Traceback" in stream.getvalue()


@pytest.mark.parametrize("side", [8_000, 20_000])  # Pillow's warning, then its error
def test_both_decompression_bomb_refusals_quote_the_same_limit(client, people, side):
    client.force_login(people.bob)
    asset = checked(upload(client, people.case, samples.png_bomb(side), "bomb.png"))
    assert_rejected(asset, "at most 50,000,000 pixels")  # found by the media task's probe
    assert "100000000" not in asset.status_reason

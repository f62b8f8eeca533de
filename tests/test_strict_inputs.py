"""Strict inputs: the upload API reads its tus headers to the digit and names the one that is
wrong; views answer only their methods; expected refusals log one line; one pixel limit in
every refusal."""

from __future__ import annotations

import io
import logging

import pytest
from django.urls import reverse

from analysis.models import MediaUpload
from tests import media_samples as samples
from tests import routes
from tests.media_api import TUS, assert_rejected, b64, checked, creation_headers, patch, upload

pytestmark = pytest.mark.django_db


def creation(client, case, **headers):
    """A tus creation of 10 bytes named a.png, with these headers instead (None: left out)."""
    sent = {**creation_headers(10, "a.png"), **headers}
    sent = {name: value for name, value in sent.items() if value is not None}
    return client.post(reverse("media-upload-create", args=[case.id]), headers=sent)


def metadata(**values: str | bytes) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in values.items())


NOT_A_LENGTH = "Upload-Length must be a number of bytes"


@pytest.mark.parametrize(
    "headers, words",
    [
        ({"Upload-Length": "10.5"}, NOT_A_LENGTH),
        ({"Upload-Length": "-1"}, NOT_A_LENGTH),
        ({"Upload-Length": "1e3"}, NOT_A_LENGTH),
        ({"Upload-Length": "0x10"}, NOT_A_LENGTH),
        ({"Upload-Length": "ten"}, NOT_A_LENGTH),
        ({"Upload-Length": ""}, NOT_A_LENGTH),
        ({"Upload-Length": "9" * 20}, NOT_A_LENGTH),
        ({"Upload-Length": "\u0661\u0660"}, NOT_A_LENGTH),  # digits, but not ASCII ones
        ({"Upload-Length": None}, NOT_A_LENGTH),
        ({"Upload-Length": None, "Upload-Defer-Length": "1"}, "must be known"),
        ({"Upload-Metadata": "file/name YS5wbmc="}, "bad key"),
        ({"Upload-Metadata": "filename a.png"}, "filename: not base64"),
        ({"Upload-Metadata": "filename YS5wbmc\u00e9"}, "filename: not base64"),
        ({"Upload-Metadata": metadata(filename=b"\xff\xfe")}, "not base64 UTF-8"),
        ({"Upload-Metadata": "x" * 9000}, "too long"),
        ({"Upload-Metadata": metadata(filename="a.png", sha256="f" * 65)}, "64 hexadecimal"),
        ({"Upload-Metadata": metadata(filename="a.png", sha256="g" * 64)}, "64 hexadecimal"),
    ],
)
def test_a_malformed_creation_header_is_400_naming_it(client, people, headers, words):
    client.force_login(people.bob)
    reply = creation(client, people.case, **headers)
    assert reply.status_code == 400, reply.content
    assert words in reply.json()["error"]
    assert not MediaUpload.objects.exists()


@pytest.mark.parametrize("offset", ["-1", "1.0", "0x0", "", "zero", "9" * 20, None])
def test_a_malformed_upload_offset_is_400_and_changes_nothing(client, people, offset):
    client.force_login(people.bob)
    url = creation(client, people.case)["Location"]
    headers = {**TUS, **({"Upload-Offset": offset} if offset is not None else {})}
    reply = client.generic(
        "PATCH", url, b"x" * 10, content_type="application/offset+octet-stream", headers=headers
    )
    assert reply.status_code == 400, reply.content
    assert "Upload-Offset must be a number of bytes" in reply.json()["error"]
    assert client.head(url)["Upload-Offset"] == "0"


def test_a_checksum_that_is_not_base64_is_400(client, people):
    client.force_login(people.bob)
    url = creation(client, people.case)["Location"]
    reply = patch(client, url, b"x" * 10, 0, **{"Upload-Checksum": "sha256 not*base64"})
    assert reply.status_code == 400 and "not base64" in reply.json()["error"]
    assert client.head(url)["Upload-Offset"] == "0"


def test_a_valid_request_still_starts_an_upload(client, people):
    client.force_login(people.bob)
    reply = creation(client, people.case, **{"Upload-Length": " 10 "})
    assert reply.status_code == 201 and MediaUpload.objects.count() == 1


# Routes that take PUT, PATCH or DELETE, and which. A new route that does must be added here.
OTHER_METHODS = {"media-upload": {"patch", "delete"}}  # tus PATCH and termination


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

"""Serving: Range for seeking, safe headers, audited access, the hash checked on the way out."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.media import serving, storage, stores
from analysis.models import AuditEvent, MediaAsset
from tests import media_samples as samples
from tests.media_api import drop_original, make_asset, rewrite_original, stored_original

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


@pytest.fixture
def clip(people):
    return make_asset(
        people.case, people.bob, samples.video(seconds=2, with_audio=True), "clip.mp4"
    )


def file_url(asset: MediaAsset, **query) -> str:
    url = reverse("media-file", args=[asset.case_id, asset.id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def original(asset: MediaAsset) -> bytes:
    return stored_original(asset)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),  # open-ended: to the end
        ("bytes=-500", -500, None),  # suffix: the last 500 bytes
        ("bytes=7-7", 7, 7),
        ("bytes=1000-999999999", 1000, None),  # an end past the file is cut to the file
    ],
)
def test_a_range_of_the_mp4_comes_back_as_206_with_exactly_those_bytes(
    client, people, clip, header, first, last
):
    client.force_login(people.carol)
    data = original(clip)
    start = first if first >= 0 else len(data) + first
    end = len(data) - 1 if last is None else last
    response = client.get(file_url(clip), headers={"Range": header})
    assert response.status_code == 206
    assert body(response) == data[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"


def test_only_the_range_asked_for_is_read_from_the_store(client, people, clip, monkeypatch):
    """A seek in a long video must not read the object from its start (nor all of it)."""
    store = stores.current()
    real, asked, read = store.open, [], []

    class Counted:
        def __init__(self, reader) -> None:
            self.reader = reader

        def read(self, size=-1):
            block = self.reader.read(size)
            read.append(len(block))
            return block

        def close(self) -> None:
            self.reader.close()

    def spy(key, start=0, end=None):
        asked.append((key, start, end))
        return Counted(real(key, start, end))

    monkeypatch.setattr(store, "open", spy)
    client.force_login(people.carol)
    response = client.get(file_url(clip), headers={"Range": "bytes=1000-1099"})
    assert len(body(response)) == 100
    assert asked == [(storage.original_key(clip.case_id, clip.id), 1000, 1099)]
    assert sum(read) == 100


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes=5-2", "bytes=x-y"])
def test_a_range_that_cannot_be_served_is_416(client, people, clip, header):
    client.force_login(people.carol)
    response = client.get(file_url(clip), headers={"Range": header})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{clip.size}"


def test_without_range_the_whole_file_comes_with_safe_headers(client, people, clip):
    client.force_login(people.carol)
    response = client.get(file_url(clip))
    assert response.status_code == 200
    assert body(response) == original(clip)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="clip.mp4"'
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["ETag"] == f'"{clip.sha256}"'


def test_a_download_is_an_attachment_with_an_rfc_6266_name(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), 'Überwachung "Tor 3".png')
    client.force_login(people.carol)
    response = client.get(file_url(asset, download=1))
    assert response["Content-Disposition"] == (
        'attachment; filename="Uberwachung _Tor 3_.png"; '
        "filename*=UTF-8''%C3%9Cberwachung%20%22Tor%203%22.png"
    )


def test_text_is_served_as_plain_text_with_its_charset(client, people):
    asset = make_asset(people.case, people.bob, b"Note: <b>not html</b> here\n", "note.txt")
    client.force_login(people.carol)
    response = client.get(file_url(asset))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_unexpected_type_is_never_served_as_html():
    assert serving.content_type("text/html") == "application/octet-stream"
    assert serving.content_type("image/svg+xml") == "application/octet-stream"


def test_a_view_and_a_download_are_recorded_once_not_per_range(client, people, clip):
    client.force_login(people.carol)
    body(client.get(file_url(clip), headers={"Range": "bytes=0-"}))
    body(client.get(file_url(clip), headers={"Range": "bytes=500-"}))  # the player seeking
    body(client.get(file_url(clip, download=1)))
    actions = list(
        AuditEvent.objects.filter(target_id=str(clip.id), actor=people.carol)
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        AuditEvent.Action.MEDIA_VIEWED,
        AuditEvent.Action.MEDIA_DOWNLOADED,
        AuditEvent.Action.MEDIA_HASH_VERIFIED,
    ]


def test_a_full_download_re_verifies_the_hash(client, people, clip):
    client.force_login(people.carol)
    body(client.get(file_url(clip, download=1)))
    clip.refresh_from_db()
    assert clip.hash_verified_at is not None and clip.hash_mismatch is False


def test_a_tampered_original_is_flagged_and_its_download_never_completes(
    client, people, clip, monkeypatch
):
    monkeypatch.setattr(serving, "BLOCK", 1024)
    data = bytearray(stored_original(clip))
    data[2000] ^= 0xFF
    rewrite_original(clip, bytes(data))
    sent = []
    monkeypatch.setattr("analysis.streaming._send", lambda case_id, msg: sent.append(msg))
    client.force_login(people.carol)
    received = body(client.get(file_url(clip, download=1)))
    assert len(received) < len(data)  # the last block is held back
    clip.refresh_from_db()
    assert clip.hash_mismatch is True
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_HASH_MISMATCH)
    assert event.target_id == str(clip.id) and event.details["via"] == "download"
    assert sent[-1]["hash_mismatch"] is True


def test_a_missing_original_is_a_404_and_a_mismatch(client, people, clip):
    drop_original(clip)
    client.force_login(people.carol)
    assert client.get(file_url(clip)).status_code == 404
    clip.refresh_from_db()
    assert clip.hash_mismatch is True


def test_head_gives_the_size_and_records_nothing(client, people, clip):
    client.force_login(people.carol)
    response = client.head(file_url(clip))
    assert response.status_code == 200
    assert response["Content-Length"] == str(clip.size)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_VIEWED).exists()


def test_derived_files_are_served_only_by_their_recorded_names(client, people, clip):
    client.force_login(people.carol)
    url = reverse("media-derived", args=[clip.case_id, clip.id, "poster.jpg"])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert body(response)[:3] == b"\xff\xd8\xff"
    for name in ["missing.jpg", "..%2F..%2Fsecret_key", ".tmp-x.jpg"]:
        bad = reverse("media-derived", args=[clip.case_id, clip.id, "x"]).removesuffix("x") + name
        assert client.get(bad).status_code == 404


def test_an_item_from_another_case_is_404(client, people, clip):
    from analysis.models import Case

    other = Case.create_with_owner(user=people.carol, title="Carol's own")
    client.force_login(people.carol)
    url = reverse("media-file", args=[other.id, clip.id])
    assert client.get(url).status_code == 404


def test_a_deleted_item_is_gone(client, people, clip):
    client.force_login(people.alice)
    client.post(reverse("media-delete", args=[clip.case_id, clip.id]))
    assert client.get(file_url(clip)).status_code == 410


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_file_streams_block_by_block(async_client, people, clip):
    """ASGI requests get the async iterator (a sync one would be read whole into memory)."""
    from asgiref.sync import sync_to_async

    await async_client.aforce_login(people.carol)
    data = await sync_to_async(original)(clip)
    response = await async_client.get(file_url(clip), headers={"Range": "bytes=-300"})
    assert response.status_code == 206
    assert response.is_async
    assert b"".join([part async for part in response.streaming_content]) == data[-300:]
    whole = await async_client.get(file_url(clip, download=1))
    assert b"".join([part async for part in whole.streaming_content]) == data
    await sync_to_async(clip.refresh_from_db)()
    assert clip.hash_verified_at is not None

"""DICOM, a kind added through the registry alone: upload, preview, patient tags, the model."""

from __future__ import annotations

import pytest
from django.urls import reverse
from PIL import Image

from analysis.inference.engine import Engine, Request
from analysis.inference.types import Sampler
from analysis.media import registry, storage
from analysis.media.types import MediaRejected
from analysis.models import AuditEvent, BreakGlass, MediaAsset
from tests import engine_media as em
from tests import media_samples as samples
from tests.media_api import assert_rejected, checked, upload
from tests.test_engine import tiny_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(client, people):
    client.force_login(people.bob)
    return client


def preview(asset: MediaAsset, name: str) -> Image.Image:
    with Image.open(storage.derived_path(asset.id, name)) as picture:
        return picture.convert("RGB")


def test_a_single_frame_dicom_is_previewed_with_its_window_and_study(bob, people):
    asset = checked(upload(bob, people.case, samples.dicom(), "chest.dcm"))
    assert (asset.status, asset.kind, asset.mime) == ("ready", "dicom", "application/dicom")
    assert asset.detected == "DICOM CT image, 64×48"
    meta = asset.metadata
    assert (meta["Modality"], meta["window"], meta["frames"]) == ("CT", "40/400", 1)
    picture = preview(asset, asset.derived["preview"])
    assert picture.size == (64, 48)
    # A ramp from -224 to +176 HU through the file's 40/400 window (-160..240 HU): black on
    # the left (clipped), (176 + 160) / 400 of white on the right, where the full range
    # would give white.
    assert picture.getpixel((0, 24))[0] < 8
    assert abs(picture.getpixel((63, 24))[0] - 214) <= 4
    page = bob.get(reverse("media-detail", args=[people.case.id, asset.id]))
    assert b"Chest without contrast" in page.content
    assert reverse("media-derived", args=[people.case.id, asset.id, "preview.jpg"]).encode() in (
        page.content
    )


def test_a_dicom_without_a_window_uses_its_full_range(bob, people):
    asset = checked(upload(bob, people.case, samples.dicom(window=None), "chest.dcm"))
    picture = preview(asset, asset.derived["preview"])
    assert picture.getpixel((0, 24))[0] < 10 and picture.getpixel((63, 24))[0] > 245


def test_a_multi_frame_dicom_gets_a_strip_of_its_frames(bob, people):
    asset = checked(upload(bob, people.case, samples.dicom(frames=5), "cine.dcm"))
    assert asset.status == "ready" and asset.metadata["frames"] == 5
    assert asset.metadata["strip_frames"] == [1, 2, 3, 4, 5]
    levels = [preview(asset, name).getpixel((32, 24))[0] for name in asset.derived["strip"]]
    assert levels == sorted(levels) and levels[-1] > levels[0]  # the frames brighten


def test_patient_tags_are_shown_to_case_members_only(client, people):
    client.force_login(people.bob)
    asset = checked(upload(client, people.case, samples.dicom(patient="Roe^Richard"), "a.dcm"))
    url = reverse("media-detail", args=[people.case.id, asset.id])
    assert b"Roe^Richard" in client.get(url).content
    client.force_login(people.carol)  # a viewer is a member too
    assert b"Roe^Richard" in client.get(url).content
    BreakGlass.open(case=people.case, user=people.admin, reason="Audit of the case")
    client.force_login(people.admin)  # staff on break-glass: not a member
    page = client.get(url)
    assert page.status_code == 200 and b"Chest without contrast" in page.content
    assert b"Roe^Richard" not in page.content and b"PID-4711" not in page.content


def test_patient_tags_leave_neither_in_the_upload_reply_nor_the_audit_trail(bob, people):
    reply = upload(bob, people.case, samples.dicom(patient="Roe^Richard"), "a.dcm")
    checked(reply)
    assert b"Roe^Richard" not in reply.content
    for event in AuditEvent.objects.all():
        assert "Roe^Richard" not in str(event.details) and "PID-4711" not in str(event.details)


def test_a_dicom_with_a_bad_header_is_rejected_cleanly(bob, people):
    data = bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"garbage" * 30
    assert_rejected(checked(upload(bob, people.case, data, "scan.dcm")), "DICOM")


def _damaged(how: str) -> bytes:
    """The sample with one element broken the ways fuzzing found: pydicom raises its own
    exceptions (a value length no multiple of its size, an unknown VR) when it first reads
    the element, in the header or in the body."""
    data = bytearray(samples.dicom())
    assert data[132:138] == b"\x02\x00\x00\x00UL"  # the file meta group length
    if how == "value length":
        data[138:140] = b"\x01\x00"
    elif how == "meta VR":
        data[136:138] = b"CM"
    elif how == "cut":
        del data[141:]
    else:
        at = data.index(b"\x08\x00\x60\x00CS")  # Modality, read for the media page
        data[at + 4 : at + 6] = b"ZZ"
    return bytes(data)


@pytest.mark.parametrize("how", ["value length", "meta VR", "cut", "body VR"])
def test_a_dicom_element_pydicom_cannot_convert_is_a_refusal(how, tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(_damaged(how))
    with pytest.raises(MediaRejected, match="^The DICOM header could not be read: ") as refused:
        registry.get("dicom").probe(path, "dicom")
    assert str(path) not in str(refused.value) and len(str(refused.value)) < 320


def test_a_dicom_preamble_holding_an_executable_is_refused_at_once(bob, people):
    data = b"MZ" + samples.dicom()[2:]
    reply = upload(bob, people.case, data, "scan.dcm")
    assert reply.status_code == 422 and "preamble" in reply.json()["error"]
    assert not MediaAsset.objects.exists()


@pytest.fixture(scope="module")
def engine():
    from tests.conftest import TINY_MMPROJ

    engine = Engine(
        tiny_spec(mmproj_path=str(TINY_MMPROJ), n_ctx=2048, sampler=Sampler(max_tokens=4))
    )
    yield engine
    engine.close()


def test_a_single_frame_dicom_reaches_the_model_as_one_image(engine, tmp_path):
    path = tmp_path / "chest.dcm"
    path.write_bytes(samples.dicom())
    result = engine.generate(
        Request("What is shown?", media=[em.media(path, "dicom")]), on_token=lambda t: None
    )
    assert result.record["tokens"]["chunks"] == {"image": 1, "audio": 0}
    assert result.record["media"][0]["kind"] == "dicom"
    assert "Doe^Jane" not in result.prompt


def test_a_multi_frame_dicom_reaches_the_model_like_a_short_video(engine, tmp_path):
    path = tmp_path / "cine.dcm"
    path.write_bytes(samples.dicom(frames=5))
    result = engine.generate(
        Request("What changes?", media=[em.media(path, "dicom")]), on_token=lambda t: None
    )
    assert result.record["tokens"]["chunks"] == {"image": 5, "audio": 0}
    assert result.record["media"][0]["frames"] == [0, 1, 2, 3, 4]
    assert "[frame 5]" in result.prompt

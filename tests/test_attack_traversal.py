"""Path traversal: no name that comes with a request reaches the filesystem as a path.

Uploaded files are stored under server-made UUID names (the client's name is only shown);
derived files are served only under names the media task recorded; ids are UUIDs by their
URL converters and again in storage.py; a model path must be absolute and a real GGUF.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from analysis.inference import registry
from analysis.inference.types import EngineError
from analysis.media import processing, storage
from analysis.models import MediaAsset
from tests import media_samples as samples
from tests.media_api import files_on_disk, make_asset, upload

pytestmark = pytest.mark.django_db
HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "/var/lib/gemma/originals/x",
    "%2e%2e%2f%2e%2e%2fsecret",
    "a\x00.png",
    "..",
    "CON",
    "thumb.jpg/../../../../x",
    "\u202egnp.exe",
]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_file_name_never_becomes_a_path(client, people, name, tmp_path):
    outside = tree(tmp_path) - {
        p for p in tree(tmp_path) if p.startswith(Path(storage.root()).name)
    }
    client.force_login(people.bob)
    reply = upload(client, people.case, samples.image("png"), name)
    assert reply.status_code == 200, reply.content
    asset = MediaAsset.objects.get()
    processing.process_asset(asset.id)
    assert "/" not in asset.filename and "\\" not in asset.filename and "\x00" not in asset.filename
    for stored in files_on_disk():  # originals/<case uuid>/<asset uuid>, derived/<uuid>/...
        parts = Path(stored).parts
        assert parts[0] in ("originals", "derived") and ".." not in parts, stored
        assert str(asset.id) in parts, stored
    assert tree(tmp_path) - {p for p in tree(tmp_path) if p.startswith("media")} == outside
    served = client.get(reverse("media-file", args=[people.case.id, asset.id]) + "?download=1")
    disposition = served["Content-Disposition"]
    assert "/" not in disposition.split("filename", 1)[1] and "\\" not in disposition


@pytest.mark.parametrize(
    "name",
    ["..", "...", ".tmp-x.jpg", "..%2F..%2Fsecret", "%2e%2e", "thumb.jpg%00", "../thumb.jpg"],
)
def test_a_derived_name_outside_the_recorded_ones_is_404(client, people, name):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    client.force_login(people.bob)
    thumb = asset.derived["thumbnail"]
    base = reverse("media-derived", args=[people.case.id, asset.id, thumb])
    assert client.get(base).status_code == 200  # the real one is served
    assert client.get(base.removesuffix(thumb) + name).status_code == 404


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", ".hidden", ""])
def test_storage_refuses_a_derived_name_that_is_not_a_plain_file_name(name):
    with pytest.raises(ValueError):
        storage.derived_path("5f0c6bd8-9e34-4b39-9a6a-1c1f1d3d0e11", name)


@pytest.mark.parametrize("value", ["../../etc", "x/../../y", "5f0c6bd8-9e34-4b39-9a6a-1c1f1d3d0e1"])
def test_storage_refuses_an_id_that_is_not_a_uuid(value):
    with pytest.raises(ValueError):
        storage.original_path(value, value)


@pytest.mark.parametrize("path", ["models/../../etc/passwd", "tiny.gguf", "/etc/passwd"])
def test_a_model_path_must_be_an_absolute_gguf(path):
    with pytest.raises(EngineError):
        registry.register(name="x", gguf=path)

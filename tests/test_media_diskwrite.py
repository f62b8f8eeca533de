"""Upload bytes reach the disk exactly, through O_DIRECT or the page cache (diskwrite.py)."""

from __future__ import annotations

import errno
import os
import random

import pytest

from analysis.media import diskwrite, storage
from analysis.media.diskwrite import ALIGN, STAGE, SequentialWriter
from analysis.models import MediaAsset
from tests import media_samples as samples
from tests.media_api import sha256, upload

# Sizes that cross every edge: below, at and past the alignment and the staging buffer.
AWKWARD = [1, ALIGN - 1, ALIGN, ALIGN + 1, 3 * ALIGN + 7, STAGE - 5, STAGE, STAGE + ALIGN + 3]


def direct_works(path) -> bool:
    fd = diskwrite.open_direct(path)
    if fd is None:
        return False
    os.close(fd)
    return True


def write_chunks(path, data: bytes, chunk_sizes: list[int], *, direct: bool) -> list[int | None]:
    """Write `data` as consecutive chunks, each its own writer (as each PUT is); each chunk fed
    in pieces of random sizes. Returns each writer's O_DIRECT descriptor after its flush
    (None: the page cache was used, or O_DIRECT was given up)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    rng = random.Random(len(data))
    seen, offset = [], 0
    try:
        for size in chunk_sizes:
            writer = SequentialWriter(fd, diskwrite.open_direct(path) if direct else None, offset)
            piece, end = offset, offset + size
            while piece < end:
                step = min(end - piece, rng.choice([1, 100, ALIGN - 3, 70_000, 1 << 20]))
                writer.write(data[piece : piece + step])
                piece += step
            writer.flush()
            seen.append(writer.direct)
            writer.close()
            offset = end
    finally:
        os.close(fd)
    return seen


@pytest.mark.parametrize("direct", [True, False], ids=["o_direct", "page_cache"])
def test_bytes_arrive_exactly_whatever_the_chunk_boundaries(tmp_path, settings, direct):
    settings.MEDIA_DIRECT_IO = direct
    path = tmp_path / "upload.part"
    sizes = AWKWARD + list(reversed(AWKWARD))
    data = os.urandom(sum(sizes))
    seen = write_chunks(path, data, sizes, direct=direct)
    assert path.read_bytes() == data
    if not direct:
        assert seen == [None] * len(sizes)
    elif direct_works(path):
        # Unaligned boundaries are handled, not papered over by the EINVAL fallback.
        assert None not in seen


def test_o_direct_is_used_where_the_disk_allows_it(tmp_path, settings):
    settings.MEDIA_DIRECT_IO = True
    path = tmp_path / "upload.part"
    path.touch()
    if not direct_works(path):
        pytest.skip("this filesystem has no O_DIRECT (tmpfs?): the page-cache path is used")
    seen = write_chunks(path, os.urandom(STAGE + 10), [STAGE + 10], direct=True)
    assert seen[0] is not None


def test_a_device_that_refuses_our_alignment_falls_back_to_the_page_cache(
    tmp_path, settings, monkeypatch
):
    settings.MEDIA_DIRECT_IO = True
    path = tmp_path / "upload.part"
    path.touch()
    if not direct_works(path):
        pytest.skip("this filesystem has no O_DIRECT")
    real_pwrite, refused = os.pwrite, []

    def pwrite(fd, data, offset):
        if fd in opened:  # the O_DIRECT descriptor only
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    opened: set[int] = set()
    real_open_direct = diskwrite.open_direct

    def open_direct(p):
        fd = real_open_direct(p)
        opened.add(fd)
        return fd

    monkeypatch.setattr(diskwrite, "open_direct", open_direct)
    monkeypatch.setattr(os, "pwrite", pwrite)
    data = os.urandom(2 * STAGE + 12_345)
    write_chunks(path, data, [STAGE + 1, STAGE + 12_344], direct=True)
    assert refused, "the direct descriptor was never tried"
    assert path.read_bytes() == data


@pytest.mark.django_db
def test_an_upload_in_unaligned_chunks_larger_than_the_buffer_is_stored_whole(
    client, people, settings
):
    settings.MEDIA_DIRECT_IO = True
    settings.MEDIA_CHUNK_BYTES = STAGE + ALIGN + 3  # every chunk boundary lands unaligned
    client.force_login(people.bob)
    data = samples.wav(seconds=3 * STAGE / 16_000 + 0.1)  # 8 kHz 16-bit mono: > 3 chunks
    reply = upload(client, people.case, data, "long call.wav")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["status"] == "complete"
    assert body["sha256"] == sha256(data)
    asset = MediaAsset.objects.get(pk=body["asset"])
    assert storage.original_path(asset.case_id, asset.id).read_bytes() == data

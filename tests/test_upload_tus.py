"""tus 1.0 (core, creation, termination, checksum) as standard clients speak it: the Python
client tuspy against the real server, resuming after its connection was cut mid-chunk."""

from __future__ import annotations

import contextlib
import io
import socket
import threading

import pytest
from django.utils.crypto import get_random_string
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from analysis.media import storage
from analysis.models import MediaAsset, MediaUpload
from tests import media_samples as samples
from tests.live_server import LiveServer
from tests.media_api import install_queue, sha256, stored_original

# On the disk and on the object store: the same bytes, whichever store takes them at the end.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_store")]
CHUNK = 64 * 1024


class CuttingProxy:
    """A TCP relay that drops a connection once, when `cut_after` bytes in all have come from
    the client (mid-request: what the client sent of that request is cut off)."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.target, self.cut_after, self.cut, self.sent = port, cut_after, False, 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        for _ in range(1000):  # bounded: a test makes a few dozen connections
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(near, far, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, False), daemon=True).start()

    def _pipe(self, source, sink, upstream: bool) -> None:
        try:
            while block := source.recv(65536):
                if upstream:
                    with self.lock:
                        keep = self.cut_after - self.sent if not self.cut else len(block)
                        self.sent += len(block)
                        self.cut = self.cut or keep < len(block)
                    if keep < len(block):
                        sink.sendall(block[: max(0, keep)])
                        raise OSError("cut")
                sink.sendall(block)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                # shutdown, not just close: a recv blocked on the socket in the other
                # relay thread would keep it open, and the server would never see the cut.
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    with LiveServer() as live:
        yield live


def signed_in(client, user) -> dict:
    csrf = get_random_string(32)
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}"
    return {"Cookie": cookie, "X-CSRFToken": csrf}


def test_tuspy_uploads_and_resumes_after_a_cut_connection(server, client, people, monkeypatch):
    queue = install_queue(monkeypatch)
    data = samples.video(seconds=2, size=(96, 64)) + bytes(300_000)  # several chunks
    headers = signed_in(client, people.bob)
    proxy = CuttingProxy(server.port, cut_after=CHUNK * 2 + 5000)  # inside the third PATCH
    endpoint = f"http://127.0.0.1:{proxy.port}/cases/{people.case.id}/uploads/"
    tus = tus_client.TusClient(endpoint, headers=headers)
    first = tus.uploader(
        file_stream=io.BytesIO(data), chunk_size=CHUNK, upload_checksum=True,
        metadata={"filename": "bodycam.mp4"},
    )  # fmt: skip
    with pytest.raises((TusCommunicationError, TusUploadFailed, OSError)):
        first.upload()
    assert proxy.cut
    session = MediaUpload.objects.get()
    assert session.received % CHUNK == 0 and 0 < session.received < len(data)
    # What the cut chunk had sent does not count: the partial file ends at the confirmed offset.
    assert storage.partial_path(session.id).stat().st_size == session.received
    again = tus.uploader(
        file_stream=io.BytesIO(data), chunk_size=CHUNK, upload_checksum=True, url=first.url
    )
    assert again.offset == session.received  # asked the server (HEAD), did not start over
    again.upload()
    asset = MediaAsset.objects.get()
    assert (asset.filename, asset.size, asset.sha256) == ("bodycam.mp4", len(data), sha256(data))
    assert asset.status == "checking" and queue.ids == [str(asset.id)]
    assert stored_original(asset) == data and not storage.partial_path(session.id).exists()
    proxy.close()

"""Hostile model files: a chat template that tries to escape Jinja's sandbox stays inert, and
a GGUF with a corrupt header is refused at registration, before any C parser reads it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.inference import gguf_header, registry
from analysis.inference.registry import ModelSpec
from analysis.inference.types import EngineError
from analysis.models import LanguageModel
from tests.conftest import TINY_TEXT
from tests.gguf_files import corrupted, with_chat_template

pytestmark = pytest.mark.django_db

# The published CVE-2024-34359 payload shape: climb from the template's own objects to a
# module's globals and call os. Here it makes a directory, so its effect is easy to see.
ESCAPE = (
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.mkdir('MARKER') }}"
    "{% for message in messages %}{{ message['content'] }}{% endfor %}"
)


def hostile_model(tmp_path):
    marker = tmp_path / "escaped"
    template = ESCAPE.replace("MARKER", str(marker))
    return with_chat_template(TINY_TEXT, tmp_path / "hostile.gguf", template), marker, template


def test_the_payload_is_live_outside_a_sandbox(tmp_path):
    """Guards the test below: rendered by plain Jinja, this template does run code."""
    import jinja2

    _, marker, template = hostile_model(tmp_path)
    jinja2.Environment().from_string(template).render(messages=[{"content": "hi"}])  # noqa: S701
    assert marker.is_dir()


def test_a_chat_template_escaping_jinja_stays_inert(tmp_path, fresh_engine):
    path, marker, template = hostile_model(tmp_path)
    assert gguf_header.read(path).chat_template == template
    model = registry.register(name="hostile", gguf=str(path))  # a well-formed file
    engine = fresh_engine.Engine(ModelSpec.from_model(model))
    try:
        with pytest.raises(EngineError, match="sandbox forbids"):
            engine.render("What is in the image?")
    finally:
        engine.close()
    assert not marker.exists()


@pytest.mark.parametrize(
    "how, reason",
    [
        ("version", "version 99"),
        ("tensor-count", "tensors"),
        ("string-length", "claims"),
        ("array-length", "more than the file holds"),
        ("truncated", "past the end of the file"),
    ],
)
def test_a_corrupt_header_is_refused_at_registration(tmp_path, how, reason):
    path = corrupted(TINY_TEXT, tmp_path / f"{how}.gguf", how)
    with pytest.raises(EngineError, match="corrupt GGUF header") as refused:
        registry.register(name=how, gguf=str(path))
    assert reason in str(refused.value)
    assert not LanguageModel.objects.exists()


def test_the_registration_page_names_the_corruption(client, people, tmp_path):
    path = corrupted(TINY_TEXT, tmp_path / "cut.gguf", "truncated")
    client.force_login(people.admin)
    reply = client.post(
        reverse("model-register"),
        {"name": "cut", "gguf_path": str(path), "n_ctx": 512, "n_gpu_layers": 0, "n_threads": 0},
    )
    assert reply.status_code == 200
    assert "corrupt GGUF header" in reply.content.decode()
    assert not LanguageModel.objects.exists()


def test_a_model_without_a_chat_template_is_refused_at_registration(tmp_path):
    path = with_chat_template(TINY_TEXT, tmp_path / "none.gguf", "")
    with pytest.raises(EngineError, match="no chat template"):
        registry.register(name="none", gguf=str(path))

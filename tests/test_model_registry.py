"""The model registry: approval by path and SHA-256, one default, capabilities, staff pages."""

from __future__ import annotations

import shutil
from dataclasses import astuple

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from analysis.inference import registry
from analysis.inference.types import EngineError
from analysis.models import AuditEvent, LanguageModel
from tests.conftest import TINY_MMPROJ, TINY_TEXT

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def register(name="tiny", **options) -> LanguageModel:
    return registry.register(name=name, gguf=str(TINY_TEXT), **options)


def events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_registration_hashes_the_files_and_reads_capabilities(people):
    model = register(mmproj=str(TINY_MMPROJ), n_ctx=2048, actor=people.admin)
    assert model.gguf_sha256 == registry.sha256_file(TINY_TEXT)
    assert model.mmproj_sha256 == registry.sha256_file(TINY_MMPROJ)
    assert (model.has_vision, model.has_audio) == (True, True)
    assert model.capabilities == ["text", "image", "audio"]
    assert model.is_default  # the first model is the default
    [event] = events(Action.MODEL_REGISTERED)
    assert event.actor == people.admin and event.details["gguf_sha256"] == model.gguf_sha256


def test_capabilities_come_from_the_projector_without_loading_a_model():
    from analysis.inference import gguf_meta, mtmd

    caps = gguf_meta.capabilities(TINY_MMPROJ)
    assert (caps.vision, caps.audio) == (True, True)
    assert (caps.vision, caps.audio) == astuple(mtmd.file_capabilities(TINY_MMPROJ))
    assert gguf_meta.capabilities(TINY_TEXT) == gguf_meta.Caps(vision=False, audio=False)
    assert register(name="text").capabilities == ["text"]


def test_registering_again_is_idempotent_and_a_new_file_is_a_recorded_change(tmp_path):
    copy = tmp_path / "model.gguf"
    shutil.copyfile(TINY_TEXT, copy)
    first = registry.register(name="m", gguf=str(copy))
    registry.register(name="m", gguf=str(copy))
    assert not events(Action.MODEL_CHANGED)
    with open(copy, "ab") as f:
        f.write(b"\0")  # an admin replaced the file and approves the new one
    again = registry.register(name="m", gguf=str(copy))
    assert again.pk == first.pk and again.gguf_sha256 != first.gguf_sha256
    [event] = events(Action.MODEL_CHANGED)
    assert event.details["changes"]["gguf_sha256"] == [first.gguf_sha256, again.gguf_sha256]


@pytest.mark.parametrize(
    ("gguf", "mmproj", "message"),
    [
        ("relative/model.gguf", "", "must be absolute"),
        ("/nonexistent/model.gguf", "", "No model file"),
        (str(TINY_TEXT.parent / "SHA256SUMS"), "", "not a GGUF file"),
        (str(TINY_TEXT), str(TINY_TEXT), "not a projector with a vision or audio encoder"),
    ],
)
def test_what_cannot_be_registered_is_refused_with_the_reason(gguf, mmproj, message):
    with pytest.raises(EngineError, match=message):
        registry.register(name="bad", gguf=gguf, mmproj=mmproj)
    assert not LanguageModel.objects.exists()


def test_there_is_exactly_one_default():
    first, second = register("a"), register("b")
    assert [first.is_default, second.is_default] == [True, False]
    registry.set_default(second)
    assert list(LanguageModel.objects.filter(is_default=True)) == [second]
    with pytest.raises(IntegrityError), transaction.atomic():
        LanguageModel.objects.filter(pk=first.pk).update(is_default=True)
    assert events(Action.MODEL_CHANGED)[-1].details == {"default": True}


def test_the_engine_runs_the_default_model_and_falls_back_to_settings_only_without_any(settings):
    assert registry.default_spec().id is None  # nothing registered: GEMMA_MODEL_PATH
    assert registry.default_spec().gguf_path == settings.GEMMA_MODEL_PATH
    model = register(n_ctx=1024)
    spec = registry.default_spec()
    assert (spec.id, spec.n_ctx, spec.gguf_sha256) == (model.pk, 1024, model.gguf_sha256)
    LanguageModel.objects.update(is_default=False)
    with pytest.raises(EngineError, match="No default model"):
        registry.default_spec()


def test_media_a_model_cannot_take_are_refused_before_queueing():
    register("text-only")
    assert "cannot see images or video" in registry.refusal({"image"})
    assert "cannot see images or video" in registry.refusal({"video", "document"})
    assert "cannot hear audio" in registry.refusal({"audio"})
    # A model without any projector is said to read text only, not to lack parts of one.
    assert "reads text only" in registry.refusal({"audio"})
    assert "projector" not in registry.refusal({"audio"})
    assert "reads text only" in registry.media_note()
    assert registry.refusal({"document"}) is None and registry.refusal(set()) is None
    registry.set_default(register("multi", mmproj=str(TINY_MMPROJ)))
    assert registry.refusal({"image", "audio", "video"}) is None


def test_the_management_commands_register_the_tiny_models(capsys):
    call_command("register_test_models")
    call_command("register_test_models")  # idempotent
    names = dict(LanguageModel.objects.values_list("name", "has_audio"))
    assert names == {"tiny-gemma4": True, "tiny-gemma4-text": False}
    call_command("register_model", name="x", gguf=str(TINY_TEXT), n_ctx=512, default=True,
                 temperature=0.5)  # fmt: skip
    model = LanguageModel.objects.get(name="x")
    assert model.is_default and model.n_ctx == 512 and model.sampler["temperature"] == 0.5
    assert "(default)" in capsys.readouterr().out


# --- staff pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_only_superusers_see_the_model_pages(client, people, who, django_user_model):
    user = (
        people.alice
        if who == "alice"
        else django_user_model.objects.create_user("sam", password="x", is_staff=True)
    )
    client.force_login(user)
    model = register()
    for url in (
        reverse("model-list"),
        reverse("model-register"),
        reverse("model-edit", args=[model.pk]),
    ):
        assert client.get(url).status_code == 404
    assert client.post(reverse("model-set-default", args=[model.pk])).status_code == 404


def test_an_admin_registers_a_model_by_path(client, people):
    client.force_login(people.admin)
    response = client.post(reverse("model-register"), {
        "name": "tiny", "gguf_path": str(TINY_TEXT), "mmproj_path": str(TINY_MMPROJ),
        "n_ctx": 2048, "n_gpu_layers": 0, "n_threads": 2,
    })  # fmt: skip
    assert response.status_code == 302
    model = LanguageModel.objects.get()
    assert model.has_vision and model.created_by == people.admin
    page = client.get(reverse("model-list")).content.decode()
    assert "tiny" in page and model.gguf_sha256[:16] in page and "image, audio" in page
    bad = client.post(reverse("model-register"), {
        "name": "bad", "gguf_path": "/etc/hostname", "n_ctx": 2048, "n_gpu_layers": 0,
        "n_threads": 0,
    })  # fmt: skip
    assert bad.status_code == 200 and "not a GGUF file" in bad.content.decode()


def test_an_admin_edits_settings_and_the_change_is_recorded(client, people):
    model = register()
    client.force_login(people.admin)
    form = client.get(reverse("model-edit", args=[model.pk]))
    assert form.status_code == 200
    data = {
        "n_ctx": 1024,
        "n_gpu_layers": -1,
        "n_threads": 2,
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 0.9,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "seed": 7,
        "max_tokens": 64,
    }
    assert client.post(reverse("model-edit", args=[model.pk]), data).status_code == 302
    model.refresh_from_db()
    assert (model.n_ctx, model.n_gpu_layers, model.sampler["seed"]) == (1024, -1, 7)
    [event] = events(Action.MODEL_CHANGED)
    assert event.actor == people.admin and event.details["changes"]["n_ctx"] == [8192, 1024]


def test_an_admin_sets_the_default(client, people):
    register("a")
    second = register("b")
    client.force_login(people.admin)
    assert client.post(reverse("model-set-default", args=[second.pk])).status_code == 302
    assert LanguageModel.default() == second


def test_the_development_fallback_checks_hashes_when_given(settings, fresh_engine):
    settings.GEMMA_MODEL_SHA256 = "0" * 64
    with pytest.raises(registry.ModelFileChanged, match="has changed"):
        fresh_engine.get_engine()
    settings.GEMMA_MODEL_SHA256 = registry.sha256_file(TINY_TEXT)
    assert fresh_engine.get_engine().hashes["gguf"] == settings.GEMMA_MODEL_SHA256

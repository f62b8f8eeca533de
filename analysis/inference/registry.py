"""The model registry: which GGUF files an administrator approved, by path and SHA-256.

GGUF files are code-adjacent (parser CVEs, chat-template injection), so a model is never
uploaded: an admin names a path on the server, the file is hashed at registration, and the
hash is checked again before every load — a file changed on disk refuses to load, naming
which file. Capabilities (vision, audio) are read from the mmproj's metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.conf import settings
from django.db import transaction

from analysis import audit
from analysis.inference import gguf_header, gguf_meta
from analysis.inference.types import EngineError, ModelFileChanged, Sampler
from analysis.models import AuditEvent, LanguageModel

BLOCK = 1 << 20  # hash in 1 MiB blocks: constant memory for a 20 GB file


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """Everything the engine needs to load a model, detached from the database row."""

    name: str
    gguf_path: str
    gguf_sha256: str = ""
    mmproj_path: str = ""
    mmproj_sha256: str = ""
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int = 0
    sampler: Sampler = field(default_factory=Sampler)
    has_vision: bool = False
    has_audio: bool = False
    id: int | None = None  # None: configured by settings (GEMMA_MODEL_PATH), not registered

    @property
    def key(self) -> str:
        """Same key, same loaded model: a worker reloads only when this changes."""
        parts = (self.id, self.gguf_path, self.gguf_sha256, self.mmproj_path, self.mmproj_sha256)
        return ":".join(map(str, (*parts, self.n_ctx, self.n_gpu_layers, self.n_threads)))

    @classmethod
    def from_model(cls, model: LanguageModel) -> ModelSpec:
        return cls(
            name=model.name,
            gguf_path=model.gguf_path,
            gguf_sha256=model.gguf_sha256,
            mmproj_path=model.mmproj_path,
            mmproj_sha256=model.mmproj_sha256,
            n_ctx=model.n_ctx,
            n_gpu_layers=model.n_gpu_layers,
            n_threads=model.n_threads,
            sampler=Sampler.from_dict(model.sampler),
            has_vision=model.has_vision,
            has_audio=model.has_audio,
            id=model.pk,
        )

    @classmethod
    def from_settings(cls) -> ModelSpec:
        """Development fallback while no model is registered (tests, a first run)."""
        mmproj = settings.GEMMA_MMPROJ_PATH
        caps = gguf_meta.capabilities(mmproj) if mmproj and Path(mmproj).is_file() else None
        return cls(
            name=Path(settings.GEMMA_MODEL_PATH).stem,
            gguf_path=settings.GEMMA_MODEL_PATH,
            gguf_sha256=settings.GEMMA_MODEL_SHA256,
            mmproj_path=mmproj,
            mmproj_sha256=settings.GEMMA_MMPROJ_SHA256 if mmproj else "",
            n_ctx=settings.GEMMA_N_CTX,
            n_gpu_layers=settings.GEMMA_N_GPU_LAYERS,
            n_threads=settings.GEMMA_N_THREADS,
            sampler=Sampler(
                temperature=settings.GEMMA_TEMPERATURE,
                seed=settings.GEMMA_SEED,
                max_tokens=settings.GEMMA_MAX_TOKENS,
            ),
            has_vision=bool(caps and caps.vision),
            has_audio=bool(caps and caps.audio),
        )


def verify_files(spec: ModelSpec) -> dict[str, str]:
    """Hash the files about to be loaded; refuse any that is missing or changed.

    Returns the hashes (for a settings-configured model, the only check is that they exist).
    """
    found = {}
    for label, path, approved in (
        ("Model file", spec.gguf_path, spec.gguf_sha256),
        ("Projector file (mmproj)", spec.mmproj_path, spec.mmproj_sha256),
    ):
        if not path:
            found[label] = ""
            continue
        if not Path(path).is_file():
            raise EngineError(f"{label} not found: {path}. Ask an administrator to install it.")
        found[label] = actual = sha256_file(path)
        if approved and actual != approved:
            raise ModelFileChanged(
                f"{label} {path} has changed since it was registered as {spec.name!r} "
                f"(SHA-256 {actual[:16]}…, approved {approved[:16]}…). It will not be loaded: "
                "an administrator must register it again."
            )
    return {"gguf": found["Model file"], "mmproj": found["Projector file (mmproj)"]}


def default_spec() -> ModelSpec:
    model = LanguageModel.default()
    if model is not None:
        return ModelSpec.from_model(model)
    if LanguageModel.objects.exists():
        raise EngineError("No default model is set. Ask an administrator to choose one.")
    return ModelSpec.from_settings()


def spec_for_record(record: dict) -> ModelSpec:
    """The model a recorded analysis ran on, if it is still registered with the same files."""
    recorded = record.get("model") or {}
    if recorded.get("id") is None:  # ran on GEMMA_MODEL_PATH: the load checks the hashes
        pinned = {k: recorded.get(k) or "" for k in ("gguf_sha256", "mmproj_sha256")}
        return replace(ModelSpec.from_settings(), **pinned)
    model = LanguageModel.objects.filter(
        gguf_sha256=recorded.get("gguf_sha256", "-"),
        mmproj_sha256=recorded.get("mmproj_sha256", ""),
    ).first()
    if model is None:
        raise EngineError(
            f"The model this analysis ran on ({recorded.get('name', 'unknown')}, SHA-256 "
            f"{str(recorded.get('gguf_sha256'))[:16]}…) is no longer registered: it cannot be "
            "reproduced."
        )
    return ModelSpec.from_model(model)


def refusal(kinds: Iterable[str]) -> str | None:
    """Why the default model cannot take media of these kinds, or None when it can.

    The ask view calls this before anything is queued.
    """
    from analysis.media import registry as media_kinds

    needs = media_kinds.needs(kinds)  # each kind says which capability it takes
    if not needs:
        return None
    try:
        spec = default_spec()
    except EngineError:
        return None  # no model at all: the job fails with that reason, as for text
    if not spec.mmproj_path:
        return (
            f"The model {spec.name!r} reads text only: it cannot see images or video and "
            "cannot hear audio. Leave those items out, or ask an administrator for a "
            "multimodal model."
        )
    if "vision" in needs and not spec.has_vision:
        return (
            f"The model {spec.name!r} cannot see images or video: it has no vision projector. "
            "Leave the images and videos out, or ask an administrator for a model with vision."
        )
    if "audio" in needs and not spec.has_audio:
        return (
            f"The model {spec.name!r} cannot hear audio: its projector has no audio encoder. "
            "Leave the audio out, or ask an administrator for a model with audio."
        )
    return None


def media_note() -> str:
    """Said in the ask form before anyone submits: what the default model cannot take."""
    try:
        spec = default_spec()
    except EngineError:
        return ""
    if not spec.mmproj_path:
        return (
            f"The model {spec.name!r} reads text only: it cannot see images or video "
            "and cannot hear audio."
        )
    missing = [what for what, has in (("images or video", spec.has_vision),
                                      ("audio", spec.has_audio)) if not has]  # fmt: skip
    return f"The model {spec.name!r} cannot take {' or '.join(missing)}." if missing else ""


def _check_gguf(path: str, what: str) -> Path:
    file = Path(path)
    if not file.is_absolute():
        raise EngineError(f"The {what} path must be absolute (a path on this server): {path}")
    if not file.is_file():
        raise EngineError(f"No {what} file at {path}.")
    with open(file, "rb") as f:
        if f.read(4) != b"GGUF":
            raise EngineError(f"{path} is not a GGUF file.")
    try:
        # Before any C parser (llama.cpp, mtmd) opens the file: a hostile header stops here.
        header = gguf_header.read(file)
    except gguf_header.BadHeader as exc:
        reason = f"{path} has a corrupt GGUF header: {exc}. It is not registered."
        raise EngineError(reason) from exc
    if what == "model" and not header.chat_template:
        raise EngineError(f"{path} has no chat template; it cannot answer questions.")
    return file


def inspect(gguf: str, mmproj: str = "") -> dict:
    """Hashes and capabilities of a GGUF (+ mmproj) pair, checked as files an engine can load."""
    _check_gguf(gguf, "model")
    info = {"gguf_sha256": sha256_file(gguf), "mmproj_sha256": "", "vision": False, "audio": False}
    if mmproj:
        _check_gguf(mmproj, "projector")
        caps = gguf_meta.capabilities(mmproj)
        if not (caps.vision or caps.audio):
            raise EngineError(f"{mmproj} is not a projector with a vision or audio encoder.")
        info.update(mmproj_sha256=sha256_file(mmproj), vision=caps.vision, audio=caps.audio)
    return info


@transaction.atomic
def register(
    *,
    name: str,
    gguf: str,
    mmproj: str = "",
    default: bool = False,
    actor=None,
    request=None,
    **options,
) -> LanguageModel:
    """Register (or re-approve, by name) a model; idempotent when nothing changed.

    options: n_ctx, n_gpu_layers, n_threads, sampler (dict of sampler defaults).
    """
    info = inspect(gguf, mmproj)
    fields = dict(
        gguf_path=gguf, mmproj_path=mmproj, gguf_sha256=info["gguf_sha256"],
        mmproj_sha256=info["mmproj_sha256"], has_vision=info["vision"], has_audio=info["audio"],
        **options,
    )  # fmt: skip
    if "sampler" in fields:
        fields["sampler"] = Sampler.from_dict(fields["sampler"]).as_dict()
    model = LanguageModel.objects.select_for_update().filter(name=name).first()
    make_default = default or not LanguageModel.objects.filter(is_default=True).exists()
    if model is None:
        if make_default:
            LanguageModel.objects.filter(is_default=True).update(is_default=False)
        model = LanguageModel.objects.create(
            name=name, created_by=actor, is_default=make_default, **fields
        )
        _record(AuditEvent.Action.MODEL_REGISTERED, model, actor, request, _facts(model))
        return model
    update(model, actor=actor, request=request, **fields)
    if make_default:
        set_default(model, actor=actor, request=request)
    return model


def update(model: LanguageModel, *, actor=None, request=None, **fields) -> dict:
    """Apply changed fields; record what changed (old → new). Returns the changes."""
    changes = {
        key: [getattr(model, key), value]
        for key, value in fields.items()
        if getattr(model, key) != value
    }
    if changes:
        for key, (_, value) in changes.items():
            setattr(model, key, value)
        model.save()
        _record(AuditEvent.Action.MODEL_CHANGED, model, actor, request, {"changes": changes})
    return changes


@transaction.atomic
def set_default(model: LanguageModel, *, actor=None, request=None) -> None:
    """Make `model` the one default (the partial unique constraint allows only one)."""
    if model.is_default:
        return
    LanguageModel.objects.filter(is_default=True).update(is_default=False)
    LanguageModel.objects.filter(pk=model.pk).update(is_default=True)
    model.is_default = True
    _record(AuditEvent.Action.MODEL_CHANGED, model, actor, request, {"default": True})


def _facts(model: LanguageModel) -> dict:
    return {
        "name": model.name,
        "gguf_path": model.gguf_path,
        "gguf_sha256": model.gguf_sha256,
        "mmproj_path": model.mmproj_path,
        "mmproj_sha256": model.mmproj_sha256,
        "capabilities": model.capabilities,
        "default": model.is_default,
    }


def _record(action, model, actor, request, details) -> None:
    audit.record(action, actor=actor, request=request, target=model, details=details)

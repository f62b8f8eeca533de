"""What goes into the engine and what comes out: plain data, no llama.cpp, no Django models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class EngineError(Exception):
    """A failure a reviewer should read as the analysis' reason (bad model, prompt too long)."""


class PromptTooLong(EngineError):
    pass


class UnsupportedMedia(EngineError):
    """The model cannot take this kind of media (an image for a text-only model)."""


class ModelFileChanged(EngineError):
    """A registered file's SHA-256 no longer matches: it is not the file an admin approved."""


class InvalidStructuredOutput(EngineError):
    pass


@dataclass(frozen=True)
class MediaInput:
    """One media item of a request, as the engine needs it (built from a MediaAsset)."""

    id: str
    kind: str  # a media kind registered in analysis/media/registry.py
    path: Path
    sha256: str
    name: str = ""
    mime: str = ""


@dataclass(frozen=True)
class Sampler:
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int = 0
    max_tokens: int = 512

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, base: Sampler | None = None) -> Sampler:
        """`base` with the known keys of `values` applied (unknown keys are ignored)."""
        known = {f.name: f.type for f in fields(cls)}
        picked = {k: v for k, v in (values or {}).items() if k in known and v is not None}
        base = base or cls()
        return replace(base, **{k: type(getattr(base, k))(v) for k, v in picked.items()})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Request:
    question: str
    media: list[MediaInput] = field(default_factory=list)
    schema: dict | None = None
    sampler: dict | None = None  # overrides of the model's sampler defaults
    # A previous record to replay: its sampler, frame timestamps, audio segments and pages.
    replay: dict | None = None


@dataclass
class Generation:
    text: str
    prompt: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    timings: dict[str, float] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

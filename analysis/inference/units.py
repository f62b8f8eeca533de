"""The pieces a media item becomes for the model: a Section of Units, and the limits.

A unit is one bitmap (a frame, an audio segment, an image, a page render) or one piece of
text (a page's text), with the label written before it in the prompt. Units of one *group*
stand or fall together (a frame and its audio segment), which is what the context budget
(budget.py) drops when the media do not fit. Each media kind (analysis/media/) builds its
own sections from these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from analysis.inference.types import EngineError, MediaInput, UnsupportedMedia
from analysis.media.types import MediaDecodeError

# How a section shrinks: "even" keeps fewer groups spread evenly (video frames, audio
# segments), "pages" drops page images then trailing pages, "fixed" cannot shrink (an image).
EVEN, PAGES, FIXED = "even", "pages", "fixed"


@dataclass(frozen=True)
class Limits:
    max_frames: int = 16
    frame_interval: float = 1.0  # at most one frame per this many seconds
    frame_max_side: int = 768
    image_max_side: int = 1536
    audio_segment_seconds: float = 30.0
    max_audio_segments: int = 20
    doc_max_pages: int = 20
    page_images: int = 4
    page_max_side: int = 1024

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(**getattr(settings, "GEMMA_MEDIA_LIMITS", {}))


@dataclass
class Unit:
    kind: str  # "image" | "audio" | "text"
    label: str
    group: int
    ref: dict
    payload: np.ndarray | None = None
    bitmap_id: str = ""
    optional: bool = False  # dropped before any group is (page images)
    cost: int = 0  # tokens, filled in once the prompt is tokenized


@dataclass
class Section:
    media: MediaInput
    title: str
    units: list[Unit]
    strategy: str
    # Decodes the payloads of the given units, in one pass over the file. Planning only reads
    # metadata, so a prompt whose media prefix is cached never decodes anything.
    loader: Callable[[list[Unit]], None] | None = None
    groups: list[int] = field(default_factory=list)  # all groups, in order
    kept: list[int] = field(default_factory=list)
    dropped: set[int] = field(default_factory=set)  # indices of dropped optional units

    def __post_init__(self) -> None:
        self.groups = sorted({unit.group for unit in self.units})
        self.kept = list(self.groups)

    def load(self) -> None:
        missing = [u for u in self.units if u.kind != "text" and u.payload is None]
        if not missing or self.loader is None:
            return
        try:
            self.loader(missing)
        except (MediaDecodeError, OSError) as exc:
            name = self.media.name or self.media.kind
            raise EngineError(f'"{name}" could not be read for the model: {exc}') from exc

    def selection(self) -> dict:
        """What the budget kept, to apply again without recounting (cache.py's plan index)."""
        return {"kept": self.kept, "dropped": sorted(self.dropped)}

    def select(self, selection: dict) -> None:
        self.kept, self.dropped = list(selection["kept"]), set(selection["dropped"])

    def live_units(self) -> list[Unit]:
        kept = set(self.kept)
        return [u for i, u in enumerate(self.units) if u.group in kept and i not in self.dropped]

    @property
    def cost(self) -> int:
        return sum(unit.cost for unit in self.live_units())

    def text(self, marker: str) -> str:
        lines = [self.title]
        for unit in self.live_units():
            lines.append(unit.label if unit.kind == "text" else f"{unit.label}{marker}")
        return "\n".join(lines)

    def used(self) -> dict:
        """What the record says the model saw of this item."""
        used: dict = {"id": self.media.id, "kind": self.media.kind, "sha256": self.media.sha256}
        used["name"] = self.media.name
        for unit in self.live_units():
            for key, value in unit.ref.items():
                used.setdefault(key, []).append(value)
        used["units"] = {"planned": len(self.units), "used": len(self.live_units())}
        return used


def hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def even(n_total: int, n_keep: int) -> list[int]:
    """n_keep indices spread evenly over range(n_total), first and last region included."""
    if n_keep >= n_total:
        return list(range(n_total))
    return sorted({min(n_total - 1, int((i + 0.5) * n_total / n_keep)) for i in range(n_keep)})


def require(capable: bool, what: str, item: MediaInput) -> None:
    if not capable:
        raise UnsupportedMedia(
            f'The model cannot take {what} ("{item.name or item.kind}"): ask an administrator '
            "for a model with a projector that supports it."
        )

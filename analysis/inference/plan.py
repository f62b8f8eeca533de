"""Which parts of each media item the model sees: frames, audio segments, pages.

A media item becomes a Section of Units. A unit is one bitmap (a frame, an audio segment, an
image, a page render) or one piece of text (a page's text), with the label written before it
in the prompt. Units of one *group* stand or fall together (a frame and its audio segment),
which is what the context budget (budget.py) drops when the media do not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from analysis.inference.types import EngineError, MediaInput, UnsupportedMedia
from analysis.media import sampling

# Plain-text documents have no pages: they are cut in parts of this many characters.
TEXT_PART = 4000
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
        except (sampling.MediaDecodeError, OSError) as exc:
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


def build_sections(
    media: list[MediaInput], caps, limits: Limits, replay: list[dict] | None = None
) -> list[Section]:
    """Plan every item's units (metadata only), following a replayed plan where one is given."""
    plans = {entry.get("sha256"): entry for entry in replay or []}
    sections = []
    for number, item in enumerate(media, start=1):
        builder = BUILDERS.get(item.kind)
        if builder is None:
            raise UnsupportedMedia(f"{item.name or item.kind}: unknown media kind {item.kind!r}")
        try:
            sections.append(builder(item, number, caps, limits, plans.get(item.sha256)))
        except (sampling.MediaDecodeError, OSError) as exc:
            raise EngineError(f'"{item.name}" could not be read for the model: {exc}') from exc
    return sections


def _image(item: MediaInput, number: int, caps, limits: Limits, plan) -> Section:
    _require(caps.vision, "images", item)
    unit = Unit("image", "", 0, {}, bitmap_id=f"{item.sha256}:image:{limits.image_max_side}")

    def load(units: list[Unit]) -> None:
        unit.payload = sampling.load_image(item.path, limits.image_max_side)

    return Section(item, f'Image {number} "{item.name}":', [unit], FIXED, load)


def _audio(item: MediaInput, number: int, caps, limits: Limits, plan) -> Section:
    _require(caps.audio, "audio", item)
    info = sampling.av_info(item.path)
    if plan is not None:
        segments = [tuple(s) for s in plan.get("audio_segments", [])]
    else:
        segments = audio_segments(info.duration, limits.max_audio_segments, limits)
    units = [_audio_unit(item, caps, i, a, b) for i, (a, b) in enumerate(segments)]
    title = f'Audio {number} "{item.name}" ({hms(info.duration)}):'
    return Section(item, title, units, EVEN, _audio_loader(item, caps))


def _audio_unit(item: MediaInput, caps, group: int, a: float, b: float) -> Unit:
    unit = Unit("audio", f"[{hms(a)}-{hms(b)} audio] ", group, {"audio_segments": [a, b]})
    unit.bitmap_id = f"{item.sha256}:audio:{a:.3f}-{b:.3f}@{caps.sample_rate}"
    return unit


def _audio_loader(item: MediaInput, caps) -> Callable[[list[Unit]], None]:
    def load(units: list[Unit]) -> None:
        todo = [u for u in units if u.kind == "audio"]
        spans = [tuple(u.ref["audio_segments"]) for u in todo]
        for unit, pcm in zip(
            todo, sampling.audio_spans(item.path, caps.sample_rate, spans), strict=True
        ):
            unit.payload = pcm

    return load


def audio_segments(duration: float, n_max: int, limits: Limits) -> list[tuple[float, float]]:
    """Whole-file segments of at most audio_segment_seconds, at most n_max of them, spread
    evenly (a long recording is sampled, the budget may sample it further)."""
    if duration <= 0:
        return [(0.0, limits.audio_segment_seconds)]
    n = max(1, min(n_max, math.ceil(duration / limits.audio_segment_seconds)))
    step = duration / n
    return [
        (i * step, min((i + 1) * step, i * step + limits.audio_segment_seconds)) for i in range(n)
    ]


def frame_times(duration: float, limits: Limits) -> list[float]:
    """Evenly spaced timestamps, one in the middle of each of n equal slices of the clip."""
    n = max(1, min(limits.max_frames, int(duration / limits.frame_interval)))
    return [round((i + 0.5) * duration / n, 3) for i in range(n)]


def _video(item: MediaInput, number: int, caps, limits: Limits, plan) -> Section:
    _require(caps.vision, "video", item)
    info = sampling.av_info(item.path)
    times = plan.get("frames", []) if plan is not None else frame_times(info.duration, limits)
    if plan is not None:
        segments = [tuple(s) for s in plan.get("audio_segments", [])]
    elif caps.audio and info.has_audio:
        step = info.duration / len(times)
        span = limits.audio_segment_seconds
        segments = [(i * step, min((i + 1) * step, i * step + span)) for i in range(len(times))]
    else:
        segments = []
    units = []
    for i, t in enumerate(times):
        frame = Unit("image", f"[{hms(t)}] ", i, {"frames": t})
        frame.bitmap_id = f"{item.sha256}:frame:{t:.3f}@{limits.frame_max_side}"
        units.append(frame)
        if i < len(segments):
            units.append(_audio_unit(item, caps, i, *segments[i]))
    sounds = _audio_loader(item, caps)

    def load(todo: list[Unit]) -> None:
        frames = [u for u in todo if u.kind == "image"]
        times = [u.ref["frames"] for u in frames]
        for unit, rgb in zip(
            frames, sampling.video_frames(item.path, times, limits.frame_max_side), strict=True
        ):
            unit.payload = rgb
        sounds(todo)

    title = f'Video {number} "{item.name}" ({hms(info.duration)}):'
    return Section(item, title, units, EVEN, load)


def _document(item: MediaInput, number: int, caps, limits: Limits, plan) -> Section:
    with open(item.path, "rb") as f:
        is_pdf = f.read(5) == b"%PDF-"
    if not is_pdf:
        return _text_document(item, number, plan)
    planned = plan.get("pages", []) if plan is not None else []
    texts, count = sampling.pdf_page_texts(item.path, max([limits.doc_max_pages, *planned]))
    pages = planned if plan is not None else list(range(1, len(texts) + 1))
    if plan is not None:
        images = plan.get("page_images", []) if caps.vision else []
    else:
        images = pages[: limits.page_images] if caps.vision else []
    units = []
    for page in pages:
        units.append(Unit("text", f"[page {page}]\n{texts[page - 1]}", page, {"pages": page}))
        if page in images:
            image = Unit("image", f"[page {page} image] ", page, {"page_images": page})
            image.optional = True
            image.bitmap_id = f"{item.sha256}:page:{page}@{limits.page_max_side}"
            units.append(image)

    def load(todo: list[Unit]) -> None:
        numbers = [u.ref["page_images"] for u in todo]
        renders = sampling.pdf_page_images(item.path, numbers, limits.page_max_side)
        for unit, rgb in zip(todo, renders, strict=True):
            unit.payload = rgb

    title = f'Document {number} "{item.name}" ({count} pages):'
    return Section(item, title, units, PAGES, load)


def _text_document(item: MediaInput, number: int, plan) -> Section:
    """Plain text in parts of TEXT_PART characters, so the budget can drop trailing parts."""
    text = item.path.read_text(encoding="utf-8", errors="replace")
    parts = [text[i : i + TEXT_PART] for i in range(0, max(len(text), 1), TEXT_PART)]
    numbers = plan.get("parts", []) if plan is not None else range(1, len(parts) + 1)
    units = [Unit("text", f"[part {n}]\n{parts[n - 1]}", n, {"parts": n}) for n in numbers]
    return Section(item, f'Document {number} "{item.name}" ({len(parts)} parts):', units, PAGES)


def _require(capable: bool, what: str, item: MediaInput) -> None:
    if not capable:
        raise UnsupportedMedia(
            f'The model cannot take {what} ("{item.name or item.kind}"): ask an administrator '
            "for a model with a projector that supports it."
        )


BUILDERS = {"image": _image, "audio": _audio, "video": _video, "document": _document}

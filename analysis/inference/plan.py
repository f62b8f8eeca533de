"""Which parts of each media item the model sees: each kind's module plans its own.

A media item becomes a Section of Units (units.py); the kind of the item (its module in
analysis/media/, found through the registry) decides which frames, audio segments, pages
or text it takes, and which model capability that needs. Planning reads metadata only, so
a prompt whose media prefix is cached never decodes anything.
"""

from __future__ import annotations

from analysis.inference.types import EngineError, MediaInput, UnsupportedMedia
from analysis.inference.units import (  # noqa: F401 - the planning vocabulary, in one place
    EVEN,
    FIXED,
    PAGES,
    Limits,
    Section,
    Unit,
    even,
    hms,
)
from analysis.media import registry
from analysis.media.types import MediaDecodeError, MediaRejected


def build_sections(
    media: list[MediaInput], caps, limits: Limits, replay: list[dict] | None = None
) -> list[Section]:
    """Plan every item's units (metadata only), following a replayed plan where one is given."""
    plans = {entry.get("sha256"): entry for entry in replay or []}
    sections = []
    for number, item in enumerate(media, start=1):
        try:
            kind = registry.get(item.kind)
        except MediaRejected:
            raise UnsupportedMedia(
                f"{item.name or item.kind}: unknown media kind {item.kind!r}"
            ) from None
        if kind.section is None:
            raise UnsupportedMedia(f'"{item.name}": the model takes no {kind.label.lower()}.')
        try:
            sections.append(kind.section(item, number, caps, limits, plans.get(item.sha256)))
        except (MediaDecodeError, OSError) as exc:
            raise EngineError(f'"{item.name}" could not be read for the model: {exc}') from exc
    return sections

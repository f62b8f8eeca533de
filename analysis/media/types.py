"""What every media module shares: the refusal, the result of typing a file, and a kind.

A kind (one module under analysis/media/ per kind, listed in registry.py) says everything
the rest of the site needs to know about one family of formats: how its magic bytes look,
how it is probed and what is derived from it (both run only in the media worker's sandbox),
how the media page shows it, what the model receives and which capability that takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class MediaRejected(Exception):
    """The upload is refused; str(exc) is a message for people. `status` is the HTTP code."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class MediaDecodeError(ValueError):
    """A stored item could not be decoded for the model."""


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes claim, found without a decoder (safe in the web process)."""

    kind: str  # a registered kind's name
    key: str  # the format within the kind ("png", "isobmff", "pdf" ...)
    mime: str
    label: str  # e.g. "PNG image": shown until the probe has said more
    extension: str  # what a download of this format is named with, dot included


@dataclass(frozen=True)
class Detected:
    kind: str  # a registered kind's name
    mime: str
    label: str  # e.g. "MP4 video (H.264, 1920×1080)"
    metadata: dict = field(default_factory=dict)


# Probe: (path, sniffed key) -> Detected, or MediaRejected. Runs in the sandbox.
Probe = Callable[[Path, str], Detected]
# Derive: (asset id, path, mime) -> (metadata to add, {role: derived file name(s)}). Sandbox.
Derive = Callable[[object, Path, str], tuple[dict, dict]]


@dataclass(frozen=True)
class MediaKind:
    name: str  # stored on MediaAsset.kind
    label: str  # "Image", for people
    sniff: Callable[[bytes], Sniffed | None]  # None: not this kind; MediaRejected: refused
    probe: Probe
    derive: Derive
    # The media page: a template under templates/analysis/media/kinds/ and its context.
    template: str = "analysis/media/kinds/generic.html"
    page: Callable[[object], dict] = lambda asset: {}
    # What the model receives: builds an inference Section for one item.
    section: Callable | None = None
    needs: frozenset[str] = frozenset()  # model capabilities: "vision", "audio"
    # A second sniff, tried only after every kind's sniff and the refused formats (text).
    fallback: Callable[[bytes], Sniffed | None] | None = None
    # Fields of the metadata that identify a person: shown to case members only.
    private_metadata: frozenset[str] = frozenset()
    # mime -> the extension a download is named with (the detected type, not the client's).
    extensions: dict[str, str] = field(default_factory=dict)

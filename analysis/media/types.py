"""What every media module shares: the refusal and the result of typing a file."""

from __future__ import annotations

from dataclasses import dataclass, field


class MediaRejected(Exception):
    """The upload is refused; str(exc) is a message for people. `status` is the HTTP code."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Detected:
    kind: str  # a MediaAsset.Kind value
    mime: str
    label: str  # e.g. "MP4 video (H.264, 1920×1080)"
    metadata: dict = field(default_factory=dict)

"""What reviewers add to a case: marks on answers and notes on answers or video time ranges."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from analysis.models.analyses import Analysis
from analysis.models.cases import Case
from analysis.models.media import MediaAsset


class AnswerMark(models.Model):
    """The case's verdict on one answer: pinned (chosen for the report) and a review state.

    One row per answer, changed in place; every change is an audit event, so the history
    lives on the chain and this row only says where things stand now.
    """

    class State(models.TextChoices):
        UNREVIEWED = "", "Not reviewed"
        REVIEWED = "reviewed", "Reviewed"
        DISPUTED = "disputed", "Disputed"
        WRONG = "wrong", "Wrong"

    analysis = models.OneToOneField(Analysis, on_delete=models.CASCADE, related_name="mark")
    pinned = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return (
            f"{self.analysis_id}: {self.state or 'unreviewed'}{' (pinned)' if self.pinned else ''}"
        )


class ReviewNote(models.Model):
    """A reviewer's note on an answer, or on a stretch of a video or audio item."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    analysis = models.ForeignKey(
        Analysis, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    media = models.ForeignKey(
        MediaAsset, null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    start_seconds = models.FloatField(null=True, blank=True)
    end_seconds = models.FloatField(null=True, blank=True)
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["case", "created_at"])]
        constraints = [
            # A note is about exactly one thing: an answer, or a time range of an item.
            models.CheckConstraint(
                condition=(Q(analysis__isnull=False) & Q(media__isnull=True))
                | (Q(analysis__isnull=True) & Q(media__isnull=False)),
                name="note_on_answer_or_media",
            )
        ]

    def __str__(self) -> str:
        return self.text[:40]

    @property
    def time_range(self) -> str:
        if self.start_seconds is None:
            return ""
        end = self.end_seconds if self.end_seconds is not None else self.start_seconds
        return f"{timecode(self.start_seconds)}–{timecode(end)}"


def timecode(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"

"""Prompt templates (a named question for a kind of media) and batches (one template over
many items, one job each).

A template is plain text with a few named placeholders, never code: it is filled with
`str.replace` on the known names only, so a brace in a question means nothing.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from analysis.models.cases import Case

# What a template may say about the item and the case it is asked about.
PLACEHOLDERS = {
    "item": "the item's file name",
    "kind": "the item's kind (video, audio, image, document)",
    "case": "the case's title",
    "reference": "the case's reference",
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
MEDIA_KINDS = ("image", "audio", "video", "document")


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})


class PromptTemplate(models.Model):
    """Staff-wide when `case` is empty (staff manage them), else one case's (its owners)."""

    name = models.CharField(max_length=100)
    text = models.TextField()
    # The media kinds it applies to; empty: any (and questions without media).
    media_kinds = models.JSONField(default=list, blank=True)
    # Overrides of the model's sampler defaults (temperature, max_tokens, ...).
    sampler = models.JSONField(default=dict, blank=True)
    response_schema = models.JSONField(null=True, blank=True)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.CASCADE, related_name="prompt_templates"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(case__isnull=True), name="one_staff_template_name"
            ),
            models.UniqueConstraint(fields=["case", "name"], name="one_case_template_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def for_case(cls, case: Case):
        """What a member of `case` may pick: the staff-wide ones and the case's own."""
        return cls.objects.filter(Q(case__isnull=True) | Q(case=case))

    def applies_to(self, kind: str | None) -> bool:
        return not self.media_kinds or (kind is not None and kind in self.media_kinds)

    def fill(self, case: Case, asset=None) -> str:
        values = {
            "item": asset.filename if asset is not None else "",
            "kind": asset.kind if asset is not None else "",
            "case": case.title,
            "reference": case.reference or "",
        }
        text = self.text
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text.strip()


class Batch(models.Model):
    """One template asked about many items: each item is its own analysis (its own job)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="batches")
    template = models.ForeignKey(
        PromptTemplate, null=True, on_delete=models.SET_NULL, related_name="batches"
    )
    name = models.CharField(max_length=100)  # the template's name when it ran
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.created_at:%Y-%m-%d %H:%M})"

    def summary(self) -> dict:
        """Counts by status, for the live summary row."""
        counts = dict(self.analyses.values_list("status").annotate(n=models.Count("pk")).order_by())
        total = sum(counts.values())
        finished = sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled"))
        return {"total": total, "finished": finished, **counts}

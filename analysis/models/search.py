"""The search index: one row per searchable passage, with where it points.

Rows are written by analysis/search.py when a case, an item or an answer changes; the
full-text index over them is the database's own (PostgreSQL: a stored generated tsvector
column `search_tsv` with a GIN index; SQLite: an FTS5 table), created in the migration.
"""

from __future__ import annotations

from django.db import models

from analysis.models.analyses import Analysis
from analysis.models.cases import Case
from analysis.models.media import MediaAsset


class SearchEntry(models.Model):
    class Kind(models.TextChoices):
        CASE = "case", "Case"
        MEDIA = "media", "Media name"
        PAGE = "page", "Document page"
        ANSWER = "answer", "Answer"
        NOTE = "note", "Note"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    media = models.ForeignKey(
        MediaAsset, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    analysis = models.ForeignKey(
        Analysis, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    note = models.ForeignKey(
        "ReviewNote", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    page = models.PositiveIntegerField(null=True, blank=True)
    at_seconds = models.FloatField(null=True, blank=True)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["case", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title[:40]}"

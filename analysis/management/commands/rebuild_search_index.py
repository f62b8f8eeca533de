"""Fill the search index from what the database holds (after an upgrade, or to repair it).

    python manage.py rebuild_search_index

The index is kept in step as things change; this walks every case, item, finished answer
and note once and writes their entries again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from analysis import search
from analysis.models import Analysis, Case, MediaAsset, ReviewNote, SearchEntry


class Command(BaseCommand):
    help = "Rebuild the full-text search index from the database."

    def handle(self, *args: Any, **opts: Any) -> None:
        SearchEntry.objects.all().delete()
        counts = {"cases": 0, "items": 0, "answers": 0, "notes": 0}
        for case in Case.objects.iterator(chunk_size=500):
            search.index_case(case)
            counts["cases"] += 1
        for asset in MediaAsset.objects.exclude(status="deleted").iterator(chunk_size=500):
            search.index_media(asset)
            counts["items"] += 1
        for analysis in Analysis.objects.filter(status="succeeded").iterator(chunk_size=500):
            search.index_analysis(analysis)
            counts["answers"] += 1
        for note in ReviewNote.objects.select_related("author").iterator(chunk_size=500):
            search.index_note(note)
            counts["notes"] += 1
        self.stdout.write("indexed " + ", ".join(f"{n} {what}" for what, n in counts.items()))

"""Re-hash every stored original and compare with the SHA-256 taken at upload.

    python manage.py verify_media [--case UUID]

Each check is written to the audit trail (media.hash_verified or media.hash_mismatch) and a
mismatch flags the item on its case page. Exit status 1 when any original differs or is
missing, naming each one; 0 when all match.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.media.integrity import verify_asset
from analysis.models import MediaAsset


class Command(BaseCommand):
    help = "Re-hash stored media originals; exit 1 on any mismatch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--case", help="only the items of this case (UUID)")

    def handle(self, *args: Any, **opts: Any) -> None:
        items = MediaAsset.objects.exclude(status__in=MediaAsset.GONE).order_by("created_at")
        if opts["case"]:
            try:
                items = items.filter(case_id=uuid.UUID(opts["case"]))
            except ValueError as exc:
                raise CommandError(f"not a case id: {opts['case']}") from exc
        bad = []
        count = 0
        for asset in items.iterator(chunk_size=500):
            count += 1
            if verify_asset(asset, via="verify_media"):
                self.stdout.write(f"OK       {asset.id} {asset.sha256[:16]}… {asset.filename}")
            else:
                bad.append(asset)
                self.stdout.write(f"MISMATCH {asset.id} case {asset.case_id} {asset.filename}")
        if bad:
            names = ", ".join(f"{a.filename} ({a.id})" for a in bad)
            raise CommandError(f"{len(bad)} of {count} originals differ or are missing: {names}")
        self.stdout.write(self.style.SUCCESS(f"All {count} originals match their SHA-256."))

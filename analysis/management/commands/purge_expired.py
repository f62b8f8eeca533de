"""manage.py purge_expired [--dry-run]

Deletes what the retention policies say is due (analysis/retention.py), item by item, and
certifies the run on the audit trail. --dry-run prints what would go and changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from analysis import retention, retention_purge


class Command(BaseCommand):
    help = "Purge what the retention policies say is due (--dry-run: only say what)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would go, delete nothing"
        )

    def handle(self, *args, dry_run: bool, **options) -> None:
        if dry_run:
            self._preview()
            return
        run = retention_purge.run(trigger="command")
        self.stdout.write(
            f"purge run {run.pk}: {run.items} parts, {run.bytes} bytes, "
            f"certificate sha256 {run.certificate_sha256}"
        )

    def _preview(self) -> None:
        cases = items = size = 0
        for row in retention.preview():
            cases += 1
            items += row.originals + row.derived + row.analyses + row.whole
            size += row.total_bytes
            whole = ", the whole case" if row.whole else ""
            self.stdout.write(
                f"{row.case.pk} {row.case.title!r} ({row.source} policy): "
                f"{row.originals} originals ({row.original_bytes} bytes), "
                f"{row.derived} derived ({row.derived_bytes} bytes), "
                f"{row.analyses} analyses{whole}"
            )
        held = retention.held_cases().count()
        self.stdout.write(
            f"dry run: {cases} cases, {items} parts, {size} bytes would go; "
            f"{held} held cases skipped; nothing was deleted"
        )

"""manage.py verify_audit [--case UUID ...] [--all] [--seal-file PATH | --seal-store]

Walks each audit chain (sequence, links, hashes) and checks it against every sealed head.
Exits 0 when all is intact, 1 naming the first broken link of each broken chain, 2 on
bad arguments.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis import audit
from analysis.audit_seal import read_seals, read_store_seals, seal_path
from analysis.media import stores
from analysis.models import AuditEvent, Case


class Command(BaseCommand):
    help = "Verify the audit hash chains against their seals; exit 1 on the first broken link."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--case", action="append", default=[], metavar="UUID", help="a case's chain"
        )
        parser.add_argument(
            "--all", action="store_true", help="every chain (the default without --case)"
        )
        parser.add_argument(
            "--seal-file", help="seal file to check (default: AUDIT_SEAL_PATH), e.g. a WORM copy"
        )
        parser.add_argument(
            "--seal-store", action="store_true",
            help="check against the seals copied to the object store (MEDIA_STORAGE=s3)",
        )  # fmt: skip

    def handle(self, *args, case: list[str], all: bool, seal_file: str | None, **options):
        path = Path(seal_file) if seal_file else seal_path()
        if seal_file and not path.exists():
            raise CommandError(f"seal file not found: {path}", returncode=2)
        if options["seal_store"] and stores.current().local:
            raise CommandError("--seal-store needs MEDIA_STORAGE=s3", returncode=2)
        seals = read_store_seals() if options["seal_store"] else read_seals(path)
        if options["seal_store"]:
            path = "the object store"
        if case and not all:
            results = [audit.verify(self._case_id(value, seals), seals=seals) for value in case]
        else:
            results = audit.verify_all(seals=seals)
        for result in results:
            if result.ok and options["verbosity"] >= 2:
                self.stdout.write(result.describe())
        for error in seals.errors:
            self.stderr.write(f"BROKEN seal file: {error}")
        if not seals.count:
            self.stderr.write(f"warning: no seals in {path}: hash links checked, seals not")
        broken = [result for result in results if not result.ok]
        for result in broken:
            self.stderr.write(result.describe())
        if broken or seals.errors:
            first = broken[0].describe() if broken else seals.errors[0]
            raise CommandError(f"audit trail does not verify: {first}", returncode=1)
        events = sum(result.checked for result in results)
        matched = sum(result.seals_checked for result in results)
        self.stdout.write(
            f"OK: {len(results)} chain(s), {events} event(s), {matched} sealed head(s) matched"
        )

    def _case_id(self, value: str, seals) -> uuid.UUID:
        try:
            case_id = uuid.UUID(value)
        except ValueError:
            raise CommandError(f"not a case id: {value!r}", returncode=2) from None
        known = Case.objects.filter(pk=case_id).exists() or seals.for_chain(
            AuditEvent.chain_key_for(case_id)
        )
        if not known:
            raise CommandError(f"no such case: {case_id}", returncode=2)
        return case_id

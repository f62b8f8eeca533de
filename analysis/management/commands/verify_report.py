"""Check a case report (PDF or HTML) against the case it was exported from.

    python manage.py verify_report FILE

Exit status 0 when its SHA-256 matches its export event, every hash it shows belongs to the
case, no item is missing and the case's audit chain verifies; 1 otherwise, naming each
problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.report_check import check


class Command(BaseCommand):
    help = "Check a case report's hashes against the case; exit 1 on any problem."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the report file (.pdf or .html)")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        result = check(data)
        for fact in result.facts:
            self.stdout.write(f"  {fact}")
        for problem in result.problems:
            self.stdout.write(f"BAD {problem}")
        if not result.ok:
            raise CommandError(f"{path}: {len(result.problems)} problem(s)", returncode=1)
        self.stdout.write(f"OK {path}")

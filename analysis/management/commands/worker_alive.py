"""Exit 0 when a worker's heartbeat is fresh: the healthcheck of compose's worker containers.

    python manage.py worker_alive inference@$HOSTNAME

It reads the row the worker's heartbeat thread writes (analysis/heartbeat.py), so a worker
whose process hangs or died shows unhealthy, while a broker outage, which the worker rides
out, does not make it so.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.models import WorkerHeartbeat


class Command(BaseCommand):
    help = "Exit 0 if the named Celery worker's heartbeat is fresh, 1 otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the worker's node name, e.g. inference@host")

    def handle(self, *args: Any, **opts: Any) -> None:
        row = WorkerHeartbeat.objects.filter(name=opts["name"]).first()
        if row is None:
            raise CommandError(f"no heartbeat from {opts['name']} yet")
        if row.is_down():
            raise CommandError(
                f"{row.name} (pid {row.pid}) is down: last beat {row.beat_at:%H:%M:%S}"
            )
        self.stdout.write(f"{row.name} (pid {row.pid}) alive, last beat {row.beat_at:%H:%M:%S}")

"""Run the whole site in the foreground: embedded Valkey, web, workers and beat.

    python manage.py serve [--host H] [--port P]

`scripts/run` prepares the checkout and then execs this. The process work lives in
gemma_web/supervisor.py; this command only reads settings, checks what the children need and
prints how to sign in.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.management.commands.ensure_admin import AdminLogin, describe, ensure_admin
from gemma_web.supervisor import RestartPolicy, Supervisor, site_children

DEFAULT_VALKEY_PORT = 6390  # settings' REDIS_URL default points here


class Command(BaseCommand):
    help = "Run web, workers, beat (and an embedded Valkey unless REDIS_URL is set)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("GEMMA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("GEMMA_PORT", 8000)))
        parser.add_argument(
            "--valkey-port",
            type=int,
            default=DEFAULT_VALKEY_PORT,
            help="port of the embedded Valkey (used only when REDIS_URL is unset)",
        )
        parser.add_argument("--worker-concurrency", type=int, default=2)
        parser.add_argument("--stop-timeout", type=float, default=10.0)
        # A crashed child starts again after restart-delay seconds, doubling per recent crash;
        # crash-limit crashes of one child within crash-window seconds stop the site.
        parser.add_argument("--restart-delay", type=float, default=0.5)
        parser.add_argument("--crash-limit", type=int, default=5)
        parser.add_argument("--crash-window", type=float, default=60.0)
        parser.add_argument("--no-admin", action="store_true", help="do not create an admin")

    def handle(self, *args: Any, **opts: Any) -> None:
        self._check_model()
        valkey = None
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            valkey = (opts["valkey_port"], Path(settings.VAR_DIR) / "valkey")
            _check_port_free(opts["valkey_port"], "set REDIS_URL or pass --valkey-port")
            redis_url = f"redis://127.0.0.1:{opts['valkey_port']}/0"
        _check_port_free(opts["port"], "pass --port or set GEMMA_PORT", host=opts["host"])
        login = None if opts["no_admin"] else self._admin()
        specs = site_children(
            python=sys.executable,
            host=opts["host"],
            port=opts["port"],
            redis_url=redis_url,
            valkey=valkey,
            worker_concurrency=opts["worker_concurrency"],
            inference_slots=settings.INFERENCE_SLOTS,
        )
        restart = RestartPolicy(
            restart_delay=opts["restart_delay"],
            crash_limit=opts["crash_limit"],
            crash_window=opts["crash_window"],
        )
        supervisor = Supervisor(
            specs, stop_timeout=opts["stop_timeout"], restart=restart, out=sys.stdout
        )
        code = supervisor.run(on_ready=lambda: self._banner(supervisor, opts, login))
        if code:
            raise SystemExit(code)

    def _admin(self) -> AdminLogin:
        login = ensure_admin(os.environ.get("GEMMA_ADMIN_USER", "admin"))
        if login.generated_password:
            # Said now as well as in the banner: if a child fails, the banner never comes.
            self.stdout.write(
                f"Created admin account {login.username!r}: {login.generated_password}"
            )
        return login

    def _check_model(self) -> None:
        # The inference worker loads the default model at start; fail here with a useful message.
        from analysis.inference import registry
        from analysis.inference.engine import EngineError

        try:
            path = Path(registry.default_spec().gguf_path)
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        if not path.is_file():
            raise CommandError(
                f"model not found: {path}\n"
                "Run scripts/run (it installs the demo model), register one with "
                "`manage.py register_model`, or set GEMMA_MODEL_PATH."
            )

    def _banner(
        self, supervisor: Supervisor, opts: dict[str, Any], login: AdminLogin | None
    ) -> None:
        host = opts["host"]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        url = f"http://{shown}:{opts['port']}/"
        lines = ["", f"Gemma Web is up: {url}"]
        if login:
            lines += describe(login)
        lines.append(f"Smoke test: .venv/bin/python manage.py smoke --url {url}")
        lines += ["Press Ctrl-C to stop.", ""]
        for line in lines:
            supervisor.say(line)


def _check_port_free(port: int, hint: str, host: str = "127.0.0.1") -> None:
    """Fail early and clearly instead of starting half the site next to an old instance."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError(f"{host}:{port} is in use ({exc.strerror}); {hint}") from exc

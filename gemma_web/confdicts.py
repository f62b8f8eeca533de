"""The nested settings that Django, Channels, Celery, django-csp and logging take, assembled
from the plain values settings.py reads from the environment (settings.py names every one).
"""

from __future__ import annotations

import dj_database_url
from celery.schedules import crontab


def database(url: str, conn_max_age: int) -> dict:
    config = dj_database_url.parse(url, conn_max_age=conn_max_age)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL + a busy timeout let the web process and the workers write the same file.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


def storages(debug: bool) -> dict:
    return {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {
            "BACKEND": (
                "django.contrib.staticfiles.storage.StaticFilesStorage"
                if debug
                else "whitenoise.storage.CompressedManifestStaticFilesStorage"
            )
        },
    }


def channel_layers(redis_url: str, prefix: str) -> dict:
    # redis-py 8 reads with a 5 s socket timeout by default, no longer than channels_redis'
    # 5 s blocking pop: every idle consumer then crashed. Read longer.
    host = {"address": redis_url, "socket_timeout": 30, "socket_connect_timeout": 5}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [host],
                "prefix": prefix,
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }


def task_routes() -> dict:
    return {
        "analysis.tasks.run_analysis": {"queue": "inference"},
        "analysis.tasks.sweep_stale_analyses": {"queue": "default"},
        "analysis.tasks.seal_audit_chains": {"queue": "default"},
        "analysis.tasks.record_break_glass_expiries": {"queue": "default"},
        # Decoding untrusted media happens on its own queue, never in the web process.
        "analysis.tasks.process_media": {"queue": "media"},
        "analysis.tasks.clean_expired_uploads": {"queue": "default"},
        "analysis.tasks.purge_expired": {"queue": "default"},
        "analysis.tasks.purge_case": {"queue": "default"},
    }


def beat_schedule(*, sweep: float, seal: float, clean_uploads: float, purge_at: str) -> dict:
    """Beat's periodic tasks: three every so many seconds, the purge daily at purge_at (HH:MM)."""
    hour, _, minute = purge_at.partition(":")
    return {
        "record-break-glass-expiries": {
            "task": "analysis.tasks.record_break_glass_expiries",
            "schedule": 60.0,
        },
        "sweep-stale-analyses": {"task": "analysis.tasks.sweep_stale_analyses", "schedule": sweep},
        "seal-audit-chains": {"task": "analysis.tasks.seal_audit_chains", "schedule": seal},
        "clean-expired-uploads": {
            "task": "analysis.tasks.clean_expired_uploads",
            "schedule": clean_uploads,
        },
        # Retention (analysis/retention_purge.py): once a day, UTC.
        "purge-expired": {
            "task": "analysis.tasks.purge_expired",
            "schedule": crontab(hour=hour, minute=minute),
        },
    }


def content_security_policy(report_uri: list[str]) -> dict:
    # Only same-origin files: every script and style is a file under static/, none inline, no
    # eval; media and previews come from the access-checked views of this site.
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "frame-src": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    if report_uri:  # where browsers report a violation (a site's collector)
        directives["report-uri"] = report_uri
    return {"DIRECTIVES": directives}


def logging_config(level: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "filters": {"refusals": {"()": "gemma_web.logfilters.RefusalsWithoutTraceback"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["refusals"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        # django-axes logs every sign-in at INFO; the audit trail already has them.
        "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
    }

"""Gemma Web settings: one file, driven by environment variables, safe dev defaults.

Every knob is an env var (see the README's configuration table). Without any, the site runs
on a SQLite file and an embedded Valkey started by `scripts/run`, with DEBUG off.
Parsing and checks live in envconf.py, the nested dicts that libraries take in confdicts.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from gemma_web import confdicts, envconf
from gemma_web.envconf import envbool, envfloat, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent

# Local state that must never be committed: the SQLite file, media, secret key, demo model.
VAR_DIR = Path(os.environ.get("GEMMA_VAR_DIR", BASE_DIR / "var")).resolve()

# Unset: generated once into an untracked file (0600) under VAR_DIR.
SECRET_KEY = os.environ.get("SECRET_KEY") or envconf.secret_key_file(VAR_DIR / "secret_key")
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "csp",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "analysis",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files keep their long cache; every app response is private.
    "gemma_web.headers.SecurityHeaders",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After authentication: sessions past their lifetime, a temporary password, a second
    # factor not yet given (analysis/signin.py reads django-otp's session key itself).
    "analysis.signin.SignInGateMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during sign-in into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gemma_web.urls"
ASGI_APPLICATION = "gemma_web.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "analysis.context_processors.break_glass",
            ],
        },
    }
]

# Unset: a SQLite file, in WAL mode with a busy timeout so web and workers share it.
DATABASES = {
    "default": confdicts.database(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'gemma_web.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "case-list"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in (analysis/signin.py, analysis/twofactor.py, analysis/sso.py) -------------------
# Argon2 first (the library's recommended parameters); older hashes still verify and are
# rewritten as Argon2 at the account's next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Idle timeout: requests push the session's expiry this far ahead (SignInGateMiddleware does,
# at most once a minute, instead of a session write on every request).
SESSION_IDLE_SECONDS = envint("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS
# Absolute lifetime: a session older than this ends, however busy (SignInGateMiddleware).
SESSION_MAX_SECONDS = envint("SESSION_MAX_SECONDS", 12 * 3600)
# Live sockets re-check access (membership, account, session, break-glass) this often.
SOCKET_RECHECK_SECONDS = envfloat("SOCKET_RECHECK_SECONDS", 3.0)
# Lockout after this many failures, per account and, separately, per address.
AXES_FAILURE_LIMIT = envint("SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envfloat("SIGNIN_LOCKOUT_HOURS", 1.0)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "analysis.signin.locked_out"
# The same client address as the audit trail (TRUSTED_PROXIES decides X-Forwarded-For).
AXES_CLIENT_IP_CALLABLE = "analysis.signin.client_ip"
# Two-factor: "off", "staff" (admins and auditors) or "all"; anyone may enrol regardless.
TWO_FACTOR_REQUIRED = os.environ.get("TWO_FACTOR_REQUIRED", "off").strip().lower()
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Gemma Web")
RECOVERY_CODES = 10
# Invitations: a single-use link valid this long.
INVITE_SECONDS = envint("INVITE_SECONDS", 72 * 3600)

AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Single sign-on, each off unless configured (analysis/sso.py, README "Single sign-on").
# A directory group maps to each staff role; membership is re-read at every sign-in.
LDAP_SERVER_URI = os.environ.get("LDAP_SERVER_URI", "")
LDAP_ROLE_GROUPS = {
    "admin": os.environ.get("LDAP_ADMIN_GROUP", ""),
    "auditor": os.environ.get("LDAP_AUDITOR_GROUP", ""),
}
if LDAP_SERVER_URI:
    from analysis.sso_settings import ldap_settings

    globals().update(ldap_settings(os.environ))
    AUTHENTICATION_BACKENDS.insert(1, "analysis.sso_ldap.LDAPBackend")

OIDC_ENABLED = bool(os.environ.get("OIDC_RP_CLIENT_ID"))
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_ROLE_GROUPS = {
    "admin": os.environ.get("OIDC_ADMIN_GROUP", ""),
    "auditor": os.environ.get("OIDC_AUDITOR_GROUP", ""),
}
OIDC_USE_PKCE = True
OIDC_CALLBACK_CLASS = "analysis.sso.OIDCCallbackView"
LOGIN_REDIRECT_URL_FAILURE = "login"
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("analysis.sso.OIDCBackend")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = confdicts.storages(debug=DEBUG)  # static files: WhiteNoise's manifest unless DEBUG
# Originals live outside static and are only ever served through an access-checked view.
# MEDIA_ROOT is this host's disk: uploads under way and derived files being made are staged
# here, and with the filesystem store it holds the originals too.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Where originals and derived files are kept (analysis/media/stores/): "filesystem" (MEDIA_ROOT,
# the embedded default: one host or a shared disk) or "s3", an S3-compatible object store
# that workers on other hosts reach over the network (docs/operations.md, "Object storage").
MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "filesystem").strip().lower()
envconf.one_of("MEDIA_STORAGE", MEDIA_STORAGE, "filesystem", "s3")
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")  # empty: AWS itself
S3_BUCKET = os.environ.get("S3_BUCKET", "gemma-media")
S3_PREFIX = os.environ.get("S3_PREFIX", "")  # keys under this prefix: one bucket, several sites
S3_REGION = os.environ.get("S3_REGION", "us-east-1")
S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID", "")
S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY", "")
# Object lock (WORM) for originals: "auto" uses it when the bucket has it enabled, "off"
# never. Retention mode and days for each original written (GOVERNANCE lets a deletion by
# the site's own credentials, with s3:BypassGovernanceRetention, remove the bytes;
# COMPLIANCE keeps them until the days are over whoever asks).
S3_OBJECT_LOCK = os.environ.get("S3_OBJECT_LOCK", "auto").strip().lower()
S3_OBJECT_LOCK_MODE = os.environ.get("S3_OBJECT_LOCK_MODE", "GOVERNANCE").strip().upper()
S3_OBJECT_LOCK_DAYS = envint("S3_OBJECT_LOCK_DAYS", 30)
envconf.one_of("S3_OBJECT_LOCK", S3_OBJECT_LOCK, "auto", "off")
envconf.one_of("S3_OBJECT_LOCK_MODE", S3_OBJECT_LOCK_MODE, "GOVERNANCE", "COMPLIANCE")
# Files larger than this go up in parts of this size (constant memory, resumable parts).
S3_MULTIPART_BYTES = envint("S3_MULTIPART_BYTES", 64 * 1024**2)
# Workers keep fetched originals here by SHA-256, least recently used evicted past the bound.
MEDIA_CACHE_DIR = Path(os.environ.get("MEDIA_CACHE_DIR", VAR_DIR / "media-cache"))
MEDIA_CACHE_BYTES = envint("MEDIA_CACHE_BYTES", 20 * 1024**3)

# --- Redis: Celery broker + Channels layer ---------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6390/0")

CHANNEL_LAYERS = confdicts.channel_layers(
    REDIS_URL, prefix=os.environ.get("CHANNELS_PREFIX", "gemma-web")
)

# --- Metrics (analysis/metrics.py): kept in Redis, served at /metrics ------------------------
METRICS_PREFIX = os.environ.get("CHANNELS_PREFIX", "gemma-web") + ":metrics"
# A scraper sends `Authorization: Bearer <token>`; unset, only staff sessions may read them.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Celery: long GPU jobs -------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # results live on the Analysis row, not in Redis
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Inference, media decoding and everything else each on a queue of their own.
CELERY_TASK_ROUTES = confdicts.task_routes()
# The hard limit stays below Redis' visibility timeout, or Redis would hand a still-running
# job to a second worker and it would run twice.
ANALYSIS_TIME_LIMIT = envint("ANALYSIS_TIME_LIMIT", 1800)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": ANALYSIS_TIME_LIMIT + 600}
CELERY_TASK_TIME_LIMIT = ANALYSIS_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = ANALYSIS_TIME_LIMIT - 30
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers and beat ride out a broker outage of any length (one log line per state change:
# gemma_web/broker_log.py) instead of exiting after 100 attempts.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Retention: the purge runs once a day at this time (HH:MM, UTC), analysis/retention_purge.py.
RETENTION_PURGE_AT = os.environ.get("RETENTION_PURGE_AT", "03:30")
envconf.hour_minute("RETENTION_PURGE_AT", RETENTION_PURGE_AT)
CELERY_BEAT_SCHEDULE = confdicts.beat_schedule(  # intervals in seconds
    sweep=envfloat("ANALYSIS_SWEEP_INTERVAL", 5.0),
    seal=envfloat("AUDIT_SEAL_INTERVAL", 3600.0),
    clean_uploads=envfloat("MEDIA_UPLOAD_CLEAN_INTERVAL", 900.0),
    purge_at=RETENTION_PURGE_AT,
)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Model and generation ---------------------------------------------------------------------
GEMMA_MODEL_PATH = os.environ.get("GEMMA_MODEL_PATH", str(VAR_DIR / "models" / "demo.gguf"))
GEMMA_MMPROJ_PATH = os.environ.get("GEMMA_MMPROJ_PATH", "")
# Used only while no model is registered (docs/models.md): when set, the files must match.
GEMMA_MODEL_SHA256 = os.environ.get("GEMMA_MODEL_SHA256", "")
GEMMA_MMPROJ_SHA256 = os.environ.get("GEMMA_MMPROJ_SHA256", "")
GEMMA_N_CTX = envint("GEMMA_N_CTX", 4096)
GEMMA_N_GPU_LAYERS = envint("GEMMA_N_GPU_LAYERS", 0)
GEMMA_N_THREADS = envint("GEMMA_N_THREADS", 0)  # 0: llama.cpp picks
GEMMA_MAX_TOKENS = envint("GEMMA_MAX_TOKENS", 512)
GEMMA_SEED = envint("GEMMA_SEED", 0)
GEMMA_TEMPERATURE = envfloat("GEMMA_TEMPERATURE", 0.0)  # greedy: answers are reproducible
# Questions one inference worker answers at once, batched into each decode step of one
# llama context (analysis/inference/batch.py); 1: one at a time, the plain llama loop.
INFERENCE_SLOTS = envint("INFERENCE_SLOTS", 4 if GEMMA_N_GPU_LAYERS else 1)
# llama.cpp's flash attention (off: what every answer so far was computed with).
GEMMA_FLASH_ATTN = envbool("GEMMA_FLASH_ATTN", False)
# Prompt tokens of newcomers decoded per step, so a long prompt does not stall the others.
GEMMA_PREFILL_CHUNK = envint("GEMMA_PREFILL_CHUNK", 512)
# Media prefix cache (analysis/inference/cache.py): evaluated media reused by follow-ups.
GEMMA_PREFIX_CACHE_DIR = Path(os.environ.get("GEMMA_PREFIX_CACHE_DIR", VAR_DIR / "prefix-cache"))
GEMMA_PREFIX_CACHE_RAM_MB = envint("GEMMA_PREFIX_CACHE_RAM_MB", 2048)
GEMMA_PREFIX_CACHE_DISK_MB = envint("GEMMA_PREFIX_CACHE_DISK_MB", 10240)
# What the model sees of each media item before the context budget cuts it down.
GEMMA_MEDIA_LIMITS = {
    "max_frames": envint("GEMMA_VIDEO_MAX_FRAMES", 16),
    "frame_interval": envfloat("GEMMA_VIDEO_FRAME_INTERVAL", 1.0),
    "frame_max_side": envint("GEMMA_FRAME_MAX_SIDE", 768),
    "audio_segment_seconds": envfloat("GEMMA_AUDIO_SEGMENT_SECONDS", 30.0),
    "max_audio_segments": envint("GEMMA_AUDIO_MAX_SEGMENTS", 20),
    "doc_max_pages": envint("GEMMA_DOC_MAX_PAGES", 20),
    "page_images": envint("GEMMA_DOC_PAGE_IMAGES", 4),
}
QUESTION_MAX_CHARS = envint("QUESTION_MAX_CHARS", 4000)
# Tokens are sent to browsers in batches, never one message per token.
STREAM_FLUSH_INTERVAL = envfloat("STREAM_FLUSH_INTERVAL", 0.05)
# --- Recovery: heartbeats, requeue, broker outages --------------------------------------------
# Every worker process beats for itself and for each job it holds this often (seconds).
ANALYSIS_HEARTBEAT_INTERVAL = envfloat("ANALYSIS_HEARTBEAT_INTERVAL", 2.0)
# A running analysis whose heartbeat is older than this is taken back by the sweep: queued
# again while attempts remain, failed with the reason after the last. With the sweep's
# interval this bounds the time from a worker's death to its job being queued again:
# ANALYSIS_STALE_AFTER + ANALYSIS_SWEEP_INTERVAL (15 s with the defaults).
ANALYSIS_STALE_AFTER = envfloat("ANALYSIS_STALE_AFTER", 10.0)
# A worker row is shown down once it has been silent this long.
WORKER_DOWN_AFTER = envfloat("WORKER_DOWN_AFTER", ANALYSIS_STALE_AFTER)
# A queued analysis whose message was sent longer ago than this is sent again (its message
# may have been lost with the broker); duplicates are harmless, the claim on the row decides.
ANALYSIS_REDISPATCH_AFTER = envfloat("ANALYSIS_REDISPATCH_AFTER", 300.0)
# The reviewer's workflow: one template over many items (one job each), at most this many.
BATCH_MAX_ITEMS = envint("BATCH_MAX_ITEMS", 200)

# --- Cases ------------------------------------------------------------------------------------
# How long a staff member's break-glass access to a case lasts, in seconds.
BREAK_GLASS_SECONDS = envint("BREAK_GLASS_SECONDS", 3600)
CASES_PER_PAGE = envint("CASES_PER_PAGE", 25)

# --- Media (analysis/media/, docs/upload-api.md) ---------------------------------------------
GiB, MiB = 1024**3, 1024**2
MEDIA_MAX_FILE_BYTES = envint("MEDIA_MAX_FILE_BYTES", 8 * GiB)
MEDIA_MAX_CASE_BYTES = envint("MEDIA_MAX_CASE_BYTES", 64 * GiB)
# One tus PATCH (a chunk) carries at most this much; the ASGI guard refuses a larger body
# while it streams. Each chunk costs ~10 ms of admission, fdatasync and recording, which on a
# fast link is a quarter of a 64 MiB chunk's time: 256 MiB chunks upload a gigabyte 20% faster
# than 64 MiB ones (docs/benchmarks.md, Media). A dropped connection re-sends at most one
# chunk (tus clients default to one PATCH for the whole file). The server holds ~12 MiB of
# one at most, whatever the size.
MEDIA_CHUNK_BYTES = envint("MEDIA_CHUNK_BYTES", 256 * MiB)
# Upload bytes go to disk with O_DIRECT where the filesystem allows it (analysis/media/
# diskwrite.py): 3-6x faster durable chunks here. Off: the page cache, as any other write.
MEDIA_DIRECT_IO = envbool("MEDIA_DIRECT_IO", True)
# Seconds an unfinished upload lives; the beat task removes it and its partial file after.
MEDIA_UPLOAD_EXPIRY = envint("MEDIA_UPLOAD_EXPIRY", 24 * 3600)
# Decompression-bomb limits: refused (not warned about) when an image is larger.
MEDIA_IMAGE_MAX_PIXELS = envint("MEDIA_IMAGE_MAX_PIXELS", 50_000_000)
MEDIA_IMAGE_MAX_SIDE = envint("MEDIA_IMAGE_MAX_SIDE", 30_000)
MEDIA_STRIP_FRAMES = envint("MEDIA_STRIP_FRAMES", 8)
MEDIA_PDF_PREVIEW_PAGES = envint("MEDIA_PDF_PREVIEW_PAGES", 50)
# The media worker probes and previews each file in a child process under these limits
# (analysis/media/sandbox.py); a file that breaks one is rejected and removed. CPU seconds
# count every decoder thread; memory is address space on top of what the worker holds.
MEDIA_SANDBOX_CPU_SECONDS = envint("MEDIA_SANDBOX_CPU_SECONDS", 120)
MEDIA_SANDBOX_MEMORY_BYTES = envint("MEDIA_SANDBOX_MEMORY_BYTES", 2 * GiB)
MEDIA_SANDBOX_WALL_SECONDS = envfloat("MEDIA_SANDBOX_WALL_SECONDS", 300.0)
# Any other request body: form posts are small, so a huge body is refused while it streams.
REQUEST_MAX_BODY_BYTES = envint("REQUEST_MAX_BODY_BYTES", 16 * MiB)

# --- Audit trail (analysis/audit.py) ----------------------------------------------------------
# Chain heads are appended here by the beat task; point it at write-once (WORM) storage.
AUDIT_SEAL_PATH = Path(os.environ.get("AUDIT_SEAL_PATH", VAR_DIR / "audit-seals.log"))
# With MEDIA_STORAGE=s3 each seal run is also copied to the object store as an object of its
# own, locked for AUDIT_SEAL_LOCK_DAYS where the bucket has object lock (COMPLIANCE: not even
# the site's credentials can delete it). `manage.py verify_audit --seal-store` checks them.
AUDIT_SEAL_TO_STORE = envbool("AUDIT_SEAL_TO_STORE", True)
AUDIT_SEAL_LOCK_MODE = os.environ.get("AUDIT_SEAL_LOCK_MODE", "COMPLIANCE").strip().upper()
AUDIT_SEAL_LOCK_DAYS = envint("AUDIT_SEAL_LOCK_DAYS", 3650)
envconf.one_of("AUDIT_SEAL_LOCK_MODE", AUDIT_SEAL_LOCK_MODE, "GOVERNANCE", "COMPLIANCE")
# Reverse proxies whose X-Forwarded-For is believed for the client IP; unset: REMOTE_ADDR only.
AUDIT_TRUSTED_PROXIES = envlist("TRUSTED_PROXIES", "")

# --- Security (docs/security.md) --------------------------------------------------------------
# PRODUCTION=1 turns every TLS-dependent default on at once (`manage.py check --deploy` is then
# clean); each knob below can still be set on its own.
PRODUCTION = envbool("PRODUCTION", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", PRODUCTION)
# The CSRF token travels in the page (forms, htmx's X-CSRFToken header): scripts never read it.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", PRODUCTION)
# Prometheus in compose scrapes web:8000/metrics over the private network, where there is no
# TLS proxy to send it through; the page holds counters only and refuses all but staff and
# the scrape token.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Preload asks browsers to use HTTPS before the first visit; hard to take back, so a site
# whose subdomains are not all on HTTPS turns it (or subdomains) off.
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_TLS_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Same-origin only: no inline script or style, no eval, nothing framed (gemma_web/confdicts.py).
# CSP_REPORT_URI: where browsers report a violation (a site's collector); unset: nowhere.
CONTENT_SECURITY_POLICY = confdicts.content_security_policy(envlist("CSP_REPORT_URI", ""))
# Features no page uses, refused for every page (and anything framed or injected into one).
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=(), "
    "fullscreen=(self)"
)

# To stderr, one plain line each; a refusal (403, 400) without its traceback.
LOGGING = confdicts.logging_config(level=os.environ.get("LOG_LEVEL", "INFO"))

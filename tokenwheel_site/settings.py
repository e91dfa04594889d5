"""Token Wheel settings.

Environment-driven, with safe development defaults: a fresh checkout runs
on SQLite, the in-memory channel layer and the model in a child process.
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and channels-redis.
The model worker's settings are in :mod:`.modelworker_settings`, the
environment helpers in :mod:`.env`.
"""

import datetime
import os
from pathlib import Path

import dj_database_url

from .env import BASE_DIR, envbool, envfloat, envint, envlist
from .modelworker_settings import MODELWORKER  # noqa: F401  (the model worker's settings, in a module of their own)

(BASE_DIR / "var").mkdir(exist_ok=True)


DEBUG = envbool("DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
if envbool("SECURE", False) and "DJANGO_SECRET_KEY" not in os.environ:
    # The development key is public (it is in this file): never sign real sessions with it.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECURE=1 needs DJANGO_SECRET_KEY (50+ random characters).")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
# Other front-ends of the API on origins of their own (django-cors-headers):
# only the origins listed, only /api/, never with cookies (anonymous use).
CORS_ALLOWED_ORIGINS = envlist("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = False

INSTALLED_APPS = [
    "daphne",  # first, so runserver is daphne's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "corsheaders",
    "modelworker",
    "wheel",
    "playground",
    "classrooms",
]

MIDDLEWARE = [
    # First: an HTTP request's model calls share one MODELWORKER_TIMEOUT from its arrival.
    "modelworker.middleware.ModelDeadlineMiddleware",
    # Before anything that can answer a request, so a preflight gets its headers.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (settings below, tokenwheel_site/csp.py).
    "tokenwheel_site.csp.SiteCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# --- Content-Security-Policy (django-csp 4.0) ----------------------------------
# Scripts, styles, fonts, images and connections from this site only: no
# inline <script> or event handler, no eval, no inline style (pages pass data
# with json_script; scripts set styles through the CSSOM, which CSP allows).
# tokenwheel_site/csp.py adds this host's ws:// and wss:// to connect-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "tokenwheel_site.urls"
ASGI_APPLICATION = "tokenwheel_site.asgi.application"

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

# --- Database -------------------------------------------------------------
# SQLite by default; DATABASE_URL for PostgreSQL (or another SQLite file).
SQLITE_PATH = os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH", str(BASE_DIR / "var" / "test-db.sqlite3"))},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Any SQLite, the default or a sqlite:// URL, under concurrent writers: WAL,
    # a busy timeout, IMMEDIATE transactions (a DEFERRED one that reads, then
    # writes, fails at once with "database is locked"), and open connections
    # pooled across requests (tokenwheel_site/db/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "tokenwheel_site.db.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "pool_size": envint("SQLITE_POOL_SIZE", 32),
        **DATABASES["default"].get("OPTIONS", {}),
    }
    DATABASES["default"].setdefault("TEST", {})
# A connection is closed when its request ends (SQLite's goes back to the pool
# above; PostgreSQL opens one per request): a request's thread
# (tokenwheel_site/asgi_handler.py) holds none between requests.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Threads that serve HTTP requests in a web process: the sync middleware chain
# and view, one request at a time each. A request waiting for the model holds
# its thread, so there are enough for a school's requests in flight; one
# beyond them waits for a thread, first come first served.
WEB_REQUEST_THREADS = envint("WEB_REQUEST_THREADS", 128)
# Load shedding (tokenwheel_site/admission.py): while a request would spend
# longer than this in the web process (requests in it / the rate they leave),
# a new API request gets 503 busy with Retry-After at once; 0 turns it off.
# Fewer requests in flight than the minimum never count as a queue.
WEB_MAX_WAIT_SECONDS = envfloat("WEB_MAX_WAIT_SECONDS", 2.0)
WEB_SHED_MIN_IN_FLIGHT = envint("WEB_SHED_MIN_IN_FLIGHT", 32)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and cache -----------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis, fixed for several model workers on one channel and Redis outages.
            "BACKEND": "modelworker.redis_layer.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s read timeout would cut channels-redis's 5 s BZPOPMIN.
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 3, "socket_timeout": 15}],
                "prefix": os.environ.get("REDIS_PREFIX", "asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    # Throttle state. While Redis is down it reads as empty (requests pass unthrottled)
    # instead of turning every request into a 500.
    CACHES = {
        "default": {
            "BACKEND": "tokenwheel_site.redis_cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("REDIS_PREFIX", ""),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# Sign-in lockout (django-axes, classrooms/accounts_lockout.py): an account after
# FAILURES_PER_ACCOUNT failed sign-ins, an address after FAILURES_PER_ADDRESS (a
# school signs in from one address), each for MINUTES after the last failure.
LOGIN_LOCKOUT = {
    "FAILURES_PER_ACCOUNT": envint("LOGIN_FAILURES_PER_ACCOUNT", 5),
    "FAILURES_PER_ADDRESS": envint("LOGIN_FAILURES_PER_ADDRESS", 50),
    "MINUTES": envint("LOGIN_LOCKOUT_MINUTES", 15),
}
AUTHENTICATION_BACKENDS = [
    "classrooms.accounts_lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "classrooms.accounts_lockout.AccountAndAddressHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = LOGIN_LOCKOUT["FAILURES_PER_ACCOUNT"]
AXES_COOLOFF_TIME = datetime.timedelta(minutes=LOGIN_LOCKOUT["MINUTES"])
AXES_LOCKOUT_CALLABLE = "classrooms.accounts_lockout.lockout_response"
# A try during the lockout neither counts nor extends it; no log of every sign-in.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# WhiteNoise warns at every start when this folder is missing (before any collectstatic).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Production: STATICFILES_BACKEND=whitenoise.storage.CompressedManifestStaticFilesStorage
# and `manage.py collectstatic` (hashed, compressed, cached for a year).
STATICFILES_BACKEND = os.environ.get("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": STATICFILES_BACKEND},
}
# Serve straight from the finders in development and tests (no collectstatic
# needed); with the manifest storage, only what collectstatic wrote.
WHITENOISE_USE_FINDERS = "Manifest" not in STATICFILES_BACKEND
WHITENOISE_AUTOREFRESH = DEBUG

# Limit request bodies (the prompt limit is far smaller; this stops 10 MB bodies early).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)

# --- Production hardening (behind a TLS-terminating proxy) ------------------
if envbool("SECURE", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tokenwheel_site.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "tokenwheel_site.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # `?format=csv` is the export's own parameter, not DRF's content negotiation.
    "URL_FORMAT_OVERRIDE": None,
    # A school is many students behind one address: session operations are
    # limited per session, signed-in users per user; the per-address limits
    # (anonymous requests, session creation) only bound abuse. The workload of
    # issue 12 sends a student's ~60 requests a minute: 240 students ~15,000,
    # and ~400 creations in their first minute once the busy server's 503s are retried.
    "DEFAULT_THROTTLE_CLASSES": ["wheel.throttles.AddressRateThrottle", "wheel.throttles.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "20000/min"),
        "user": os.environ.get("THROTTLE_USER", "3000/min"),
        "session": os.environ.get("THROTTLE_SESSION", "240/min"),
        "create": os.environ.get("THROTTLE_CREATE", "600/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles key on REMOTE_ADDR, not on a client-supplied X-Forwarded-For
    # (behind a proxy, run daphne with --proxy-headers).
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Token Wheel API",
    "DESCRIPTION": "Next-token probabilities as a wheel: sessions, threshold and Other, append, undo, fork, compare.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set, so `check --deploy` stays free of warnings.
    "ENUM_NAME_OVERRIDES": {
        "TokenCategoryEnum": ["above_threshold", "other"],
        "DrawCategoryEnum": ["other", "sample"],
    },
}

# --- Token Wheel ----------------------------------------------------------------
WHEEL = {
    "MAX_PROMPT_CHARS": envint("WHEEL_MAX_PROMPT_CHARS", 2000),
    "MAX_TEMPERATURE": envfloat("WHEEL_MAX_TEMPERATURE", 5.0),
    "DEFAULT_THRESHOLD": 0.01,
    "DEFAULT_OTHER_TOP_K": 10,
    "MAX_OTHER_TOP_K": 100,
    "MAX_GENERATED_TOKENS": envint("WHEEL_MAX_GENERATED_TOKENS", 1000),
    "MAX_COMPARE_TOKENS": 50,
    "ANONYMOUS_TTL_SECONDS": envint("WHEEL_ANONYMOUS_TTL_SECONDS", 3600),
    # A read renews an anonymous session's hour at most this often: one UPDATE
    # per session per minute instead of one per request.
    "TOUCH_INTERVAL_SECONDS": envint("WHEEL_TOUCH_INTERVAL_SECONDS", 60),
}

# Caps for what throttles do not bound (tokenwheel_site/limits.py, wheel/services.py).
LIMITS = {
    "SOCKETS_PER_USER": envint("LIMIT_SOCKETS_PER_USER", 10),
    "SOCKETS_PER_ADDRESS": envint("LIMIT_SOCKETS_PER_ADDRESS", 300),
    # Wheel sessions a signed-in user has in use (touched within the last hour).
    "ACTIVE_SESSIONS_PER_USER": envint("LIMIT_ACTIVE_SESSIONS_PER_USER", 50),
}

PLAYGROUND = {
    "CONTEXT_WINDOW": envint("PLAYGROUND_CONTEXT_WINDOW", 64),
    "MAX_TOKENS": envint("PLAYGROUND_MAX_TOKENS", 500),
    "MESSAGES_PER_SECOND": envint("PLAYGROUND_MESSAGES_PER_SECOND", 20),
    "MIN_SPEED_MS": 100,
    "MAX_SPEED_MS": 2000,
}

# What a new class starts with (classrooms.models.GenerationSettings): the only
# place these defaults are written. A lesson's empty setting is its class's.
CLASS_DEFAULTS = {
    "threshold": WHEEL["DEFAULT_THRESHOLD"],
    "students_may_change_threshold": True,
    "temperature_min": 0.1,
    "temperature_max": 2.0,
    "top_p_enabled": True,
    "other_top_k": WHEEL["DEFAULT_OTHER_TOP_K"],
    "context_window": PLAYGROUND["CONTEXT_WINDOW"],
    "max_tokens": 200,
    "daily_token_quota": 2000,
}

# Student data (classrooms/privacy.py): `manage.py purge_student_data` deletes
# anonymous sessions, usage rows and what deleted accounts left once older than this.
PRIVACY = {"RETENTION_DAYS": envint("RETENTION_DAYS", 365)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Tracebacks without exception messages, which may quote a prompt or a token (common/logprivacy.py).
    "formatters": {
        "plain": {
            "()": "common.logprivacy.PrivateFormatter",
            "format": "[%(asctime)s] %(levelname)s %(name)s: %(message)s",
            "datefmt": "%H:%M:%S",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "modelworker": {"handlers": ["console"], "level": os.environ.get("MODELWORKER_LOG_LEVEL", "INFO"), "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        **{
            name: {"handlers": ["console"], "level": "WARNING", "propagate": False}
            for name in ("playground", "classrooms", "wheel", "tokenwheel", "axes")
        },
    },
}

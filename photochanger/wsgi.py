"""WSGI entry point (management tooling only; the service is served through ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")

application = get_wsgi_application()

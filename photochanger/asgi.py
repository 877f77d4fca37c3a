"""ASGI entry point: the service runs under uvicorn (``uvicorn photochanger.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")

application = get_asgi_application()

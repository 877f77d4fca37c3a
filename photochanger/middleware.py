"""Request middleware of our own (the booth paths never reach Django's middleware: photochanger.asgi)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

# Staff pages: their language is LANGUAGE_CODE (Russian) or the one a staff member chose in the admin
# header, never the browser's. Pages for guests, when there are some, keep following the browser.
STAFF_PATH_PREFIXES = ("/admin/",)
STAFF_EXACT_PATHS = ("/",)  # redirects to the admin


def is_staff_path(path: str) -> bool:
    return path in STAFF_EXACT_PATHS or path.startswith(STAFF_PATH_PREFIXES)


class StaffLanguageMiddleware(MiddlewareMixin):
    """Drops ``Accept-Language`` from staff requests, before ``LocaleMiddleware`` reads it.

    ``LocaleMiddleware`` then picks the language cookie (set by ``set_language`` from the switch in the
    admin header) or, without one, ``LANGUAGE_CODE``: an English browser gets Russian until its user
    chooses English.
    """

    def process_request(self, request: HttpRequest) -> None:
        if is_staff_path(request.path_info):
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)

"""The guest's share page (``GET /s/<token>``) and its image, in the browser's language (Russian or English).

Public, no login: the token is the only key. The page names nothing that leads elsewhere (no job id,
no slot, no listing); it and the image answer 404 for a token that leads nowhere and 410 once the
result's retention has passed. Reads are in ``jobs.share``.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from jobs.share import SharedResult, shared_result_get
from media import storage

# No page or image here may be framed, indexed or sent on as a referrer (the token is in the URL).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int) -> TemplateResponse:
    response = TemplateResponse(request, template, context, status=status)
    for name, value in PAGE_HEADERS.items():
        response[name] = value
    return response


def _unavailable(request: HttpRequest, shared: SharedResult | None) -> TemplateResponse:
    if shared is None:
        return _page(request, "share/missing.html", {}, 404)
    return _page(request, "share/gone.html", {}, 410)


@require_safe
def share_missing_view(request: HttpRequest) -> HttpResponse:
    return _unavailable(request, None)


@require_safe
def share_page_view(request: HttpRequest, token: str) -> HttpResponse:
    shared = shared_result_get(token=token)
    if shared is None or shared.expired:
        return _unavailable(request, shared)
    context = {
        "image_url": reverse("share-image", args=[token]),
        "download_url": reverse("share-download", args=[token]),
        "expires_at": shared.expires_at,
        "filename": shared.filename,
    }
    return _page(request, "share/page.html", context, 200)


def _image(request: HttpRequest, token: str, *, download: bool) -> HttpResponseBase:
    shared = shared_result_get(token=token)
    if shared is None or shared.expired:
        return _unavailable(request, shared)
    try:
        handle = storage.open_read(shared.path)
    except FileNotFoundError:
        return _unavailable(request, shared)  # cleanup removed it a moment ago
    except storage.StoreUnavailable:
        # The media store is down (logged by nobody: the guest retries): not the guest's fault, not gone.
        return HttpResponse(status=503, headers={"Retry-After": "5", **PAGE_HEADERS})
    response = FileResponse(
        handle, content_type=shared.mime_type, as_attachment=download, filename=shared.filename
    )
    response["Cache-Control"] = "private, max-age=3600"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def share_image_view(request: HttpRequest, token: str) -> HttpResponseBase:
    return _image(request, token, download=False)


@require_safe
def share_download_view(request: HttpRequest, token: str) -> HttpResponseBase:
    return _image(request, token, download=True)

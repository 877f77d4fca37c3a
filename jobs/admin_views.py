"""Staff pages of the jobs app outside the job list: a slot's test run, and the result gallery helper.

The test-run pages live under the slot's admin address (``/admin/slots/slot/<slot_id>/test-run/``) and
are routed in ``photochanger/urls.py`` before the admin, wrapped in ``admin.site.admin_view`` (staff
only, anonymous visitors go to the login page).
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from jobs.selectors import GALLERY_PAGE_SIZE, RecentResults, slot_recent_results
from jobs.slot_test_runs import (
    SAMPLE_PHOTO_STATIC,
    TestRunRefused,
    sample_photo,
    slot_test_run_outcome,
    slot_test_run_problems,
    slot_test_run_start,
)
from slots.models import Slot

# The query parameter of the gallery's pages ("more" shows page 2, …), on whatever page includes it.
GALLERY_PAGE_PARAMETER = "results_page"
# The status page reloads itself this often until the job is final.
STATUS_REFRESH_SECONDS = 1


def can_see_results(request: HttpRequest) -> bool:
    """Staff who may see jobs, or slots (whose page shows the gallery), may see thumbnails."""
    return any(
        request.user.has_perm(permission)
        for permission in ("jobs.view_job", "jobs.change_job", "slots.view_slot", "slots.change_slot")
    )


def can_test_run(request: HttpRequest) -> bool:
    """A test run calls the slot's provider (and costs what a booth photo costs): for who configures slots."""
    return bool(request.user.has_perm("slots.change_slot"))


def result_gallery(request: HttpRequest, *, slot_id: str) -> RecentResults:
    """The gallery page the request asks for (``?results_page=N``), for the include
    ``admin/jobs/includes/result_gallery.html`` (context variable ``gallery``)."""
    try:
        page = max(1, int(request.GET.get(GALLERY_PAGE_PARAMETER, "1")))
    except ValueError:
        page = 1
    return slot_recent_results(
        slot_id=slot_id, limit=GALLERY_PAGE_SIZE, offset=(page - 1) * GALLERY_PAGE_SIZE
    )


class TestRunForm(forms.Form):
    __test__ = False  # not a pytest test class

    photo = forms.FileField(
        label=_("Photo"),
        required=False,
        help_text=_("JPEG, PNG, WebP or HEIC, as the booth would send it."),
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/heic,image/heif"}
        ),
    )

    def __init__(self, *args: Any, use_sample: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_sample = use_sample

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.use_sample and not cleaned.get("photo"):
            raise forms.ValidationError(_("Choose a photo, or run the test with the sample photo."))
        return cleaned


def _context(request: HttpRequest, slot: Slot, **extra: Any) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        "opts": Slot._meta,
        "slot": slot,
        "gallery": result_gallery(request, slot_id=slot.id),
        "gallery_page_parameter": GALLERY_PAGE_PARAMETER,
        **extra,
    }


def slot_test_run_view(request: HttpRequest, slot_id: str) -> HttpResponse:
    """``GET``: the upload form (and the slot's gallery); ``POST``: start the test run, go to its status."""
    if not can_test_run(request):
        raise PermissionDenied
    slot = get_object_or_404(Slot, id=slot_id)
    refusal: list[str] = []
    if request.method == "POST":
        use_sample = "use_sample" in request.POST
        form = TestRunForm(request.POST, request.FILES, use_sample=use_sample)
        if form.is_valid():
            upload = sample_photo() if use_sample else form.cleaned_data["photo"]
            try:
                job_id = slot_test_run_start(
                    slot=slot, upload=upload, started_by=request.user.get_username(), sample=use_sample
                )
            except TestRunRefused as refused:
                refusal = refused.problems
            else:
                return HttpResponseRedirect(reverse("slot-test-run-status", args=[slot.id, job_id]))
    else:
        form = TestRunForm()
    return TemplateResponse(
        request,
        "admin/jobs/test_run.html",
        _context(
            request,
            slot,
            title=gettext("Test run of %(slot)s") % {"slot": slot.id},
            form=form,
            problems=slot_test_run_problems(slot=slot),
            refusal=refusal,
            sample_photo=SAMPLE_PHOTO_STATIC,
        ),
    )


def slot_test_run_status_view(request: HttpRequest, slot_id: str, job_id: uuid.UUID) -> HttpResponse:
    """Where a test run stands; the page reloads itself until the job is final, then shows the outcome."""
    if not can_test_run(request):
        raise PermissionDenied
    slot = get_object_or_404(Slot, id=slot_id)
    outcome = slot_test_run_outcome(slot_id=slot.id, job_id=job_id)
    if outcome is None:
        raise Http404
    return TemplateResponse(
        request,
        "admin/jobs/test_run_status.html",
        _context(
            request,
            slot,
            title=gettext("Test run of %(slot)s") % {"slot": slot.id},
            outcome=outcome,
            refresh_seconds=STATUS_REFRESH_SECONDS,
        ),
    )

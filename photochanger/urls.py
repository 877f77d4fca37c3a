from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from jobs.admin_views import slot_test_run_status_view, slot_test_run_view
from jobs.api import IngestView, LegacyIngestView, PublicResultView
from jobs.share_views import share_download_view, share_image_view, share_missing_view, share_page_view
from media.api import PublicMediaView
from photochanger.health import HealthView, ReadinessView
from stats.dashboard import dashboard_view
from stats.metrics import metrics_view

# The product's name, not "Django administration", on every staff page (a name: not translated).
admin.site.site_header = "PhotoChanger"
admin.site.site_title = "PhotoChanger"

urlpatterns = [
    path("ingest/<str:slot_id>", IngestView.as_view(), name="ingest"),
    # Booths configured with the older path keep working.
    path("api/ingest/<str:slot_id>", LegacyIngestView.as_view(), name="ingest-legacy"),
    # The same with a trailing slash, as some booth set-ups type it (left out of spec/openapi.json).
    path("ingest/<str:slot_id>/", IngestView.as_view(), name="ingest-slash"),
    path("api/ingest/<str:slot_id>/", LegacyIngestView.as_view(), name="ingest-legacy-slash"),
    path("public/results/<str:job_id>", PublicResultView.as_view(), name="public-result"),
    path("public/media/<str:media_id>", PublicMediaView.as_view(), name="public-media"),
    # The guest's share page of a result (jobs.share): the token is the only key.
    path("s/<str:token>", share_page_view, name="share-page"),
    path("s/<str:token>/image", share_image_view, name="share-image"),
    path("s/<str:token>/download", share_download_view, name="share-download"),
    # Anything else under /s/: the guest's "not found" page, never a listing of addresses.
    re_path(r"^s(?:/.*)?$", share_missing_view),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("api/stats/", include("stats.urls")),
    path("admin/stats/dashboard/", admin.site.admin_view(dashboard_view), name="stats-dashboard"),
    # Staff test runs of a slot (jobs.admin_views), under the slot's admin address: before "admin/",
    # whose slot pages would take the path for an object id.
    path(
        "admin/slots/slot/<str:slot_id>/test-run/",
        admin.site.admin_view(slot_test_run_view),
        name="slot-test-run",
    ),
    path(
        "admin/slots/slot/<str:slot_id>/test-run/<uuid:job_id>/",
        admin.site.admin_view(slot_test_run_status_view),
        name="slot-test-run-status",
    ),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
]

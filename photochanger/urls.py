from django.contrib import admin
from django.urls import path

from jobs.admin_views import slot_test_run_status_view, slot_test_run_view
from jobs.api import IngestView, LegacyIngestView, PublicResultView
from media.api import PublicMediaView

# The product's name, not "Django administration", on every staff page (a name: not translated).
admin.site.site_header = "PhotoChanger"
admin.site.site_title = "PhotoChanger"

urlpatterns = [
    path("ingest/<str:slot_id>", IngestView.as_view(), name="ingest"),
    # Booths configured with the older path keep working.
    path("api/ingest/<str:slot_id>", LegacyIngestView.as_view(), name="ingest-legacy"),
    path("public/results/<str:job_id>", PublicResultView.as_view(), name="public-result"),
    path("public/media/<str:media_id>", PublicMediaView.as_view(), name="public-media"),
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
]

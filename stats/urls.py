from django.urls import path

from stats.api import GlobalStatsView, SlotStatsView

urlpatterns = [
    path("global", GlobalStatsView.as_view(), name="stats-global"),
    path("<str:slot_id>", SlotStatsView.as_view(), name="stats-slot"),
]

"""``GET /api/stats/global`` and ``GET /api/stats/<slot_id>``: ingest figures over time, for staff.

Staff session only (DRF ``IsAdminUser``); anonymous requests get 403 JSON. Aggregation happens in
PostgreSQL (``stats.selectors.stats_report``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from photochanger.api import error_schema
from photochanger.errors import FailureReason, ServiceError
from providers.kinds import ProviderKind
from stats.selectors import GROUPINGS, ReportTooLarge, StatsReport, stats_report

DEFAULT_PERIOD = timedelta(hours=24)


class StatsQuerySerializer(serializers.Serializer[Any]):
    """The period and grouping asked for (ISO 8601 times; UTC when no offset is given)."""

    query_names: tuple[str, ...] = ("to", "group_by")  # besides "from"

    # "from" is a Python keyword: the field is declared under another name and renamed below.
    start = serializers.DateTimeField(
        required=False, help_text="Start of the period (default: 24 h before `to`)."
    )
    to = serializers.DateTimeField(required=False, help_text="End of the period, exclusive (default: now).")
    group_by = serializers.ChoiceField(choices=list(GROUPINGS), default="hour")

    def to_internal_value(self, data: Any) -> Any:
        names = self.query_names
        values: dict[str, Any] = {name: data.get(name) for name in names if data.get(name) not in (None, "")}
        if data.get("from") not in (None, ""):
            values["start"] = data.get("from")
        return super().to_internal_value(values)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("to") or timezone.now()
        start = attrs.get("start") or end - DEFAULT_PERIOD
        if start >= end:
            raise serializers.ValidationError("`from` must be before `to`.")
        return {"start": start, "end": end, "group_by": attrs.get("group_by", "hour")}


class GlobalStatsQuerySerializer(StatsQuerySerializer):
    query_names = ("to", "group_by", "provider")
    provider = serializers.ChoiceField(choices=ProviderKind.values, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        provider = attrs.pop("provider", None)
        return {**super().validate(attrs), "provider": provider}


class FiguresSerializer(serializers.Serializer[Any]):
    ingests = serializers.IntegerField(help_text="Accepted jobs (test runs from the admin left out).")
    succeeded = serializers.IntegerField()
    timeouts = serializers.IntegerField()
    provider_errors = serializers.IntegerField()
    internal_errors = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    live = serializers.IntegerField(help_text="Still pending or processing.")
    rejected = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Requests refused before a job existed, by failure_reason.",
    )
    p50_ms = serializers.IntegerField(allow_null=True, help_text="Total time of succeeded jobs, median.")
    p95_ms = serializers.IntegerField(allow_null=True)
    provider_p50_ms = serializers.IntegerField(allow_null=True, help_text="Claim to finalize, median.")
    queue_wait_p95_ms = serializers.IntegerField(
        allow_null=True, help_text="Received to claimed, 95th percentile."
    )


class BucketSerializer(FiguresSerializer):
    start = serializers.DateTimeField()


class SlotFiguresSerializer(serializers.Serializer[Any]):
    slot_id = serializers.CharField()
    ingests = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    timeouts = serializers.IntegerField()
    provider_errors = serializers.IntegerField()
    p95_ms = serializers.IntegerField(allow_null=True)


class StatsReportSerializer(serializers.Serializer[Any]):
    # "from" is a Python keyword: the output key is set in to_representation.
    to = serializers.DateTimeField(source="end")
    group_by = serializers.CharField()
    totals = FiguresSerializer()
    buckets = BucketSerializer(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        return {"from": serializers.DateTimeField().to_representation(instance.start), **data}


class GlobalStatsReportSerializer(StatsReportSerializer):
    slots = SlotFiguresSerializer(many=True)


def _query_parameters(provider: bool) -> list[OpenApiParameter]:
    parameters = [
        OpenApiParameter("from", OpenApiTypes.DATETIME, description="ISO 8601; default: 24 h before `to`"),
        OpenApiParameter("to", OpenApiTypes.DATETIME, description="ISO 8601, exclusive; default: now"),
        OpenApiParameter("group_by", str, enum=list(GROUPINGS), description="Bucket size (default hour)"),
    ]
    if provider:
        parameters.append(OpenApiParameter("provider", str, enum=ProviderKind.values))
    return parameters


def _report(request: Request, serializer_class: type[StatsQuerySerializer], **narrowing: Any) -> StatsReport:
    query = serializer_class(data=request.query_params)
    if not query.is_valid():
        raise ServiceError(FailureReason.INVALID_REQUEST, _first_error(query.errors))
    try:
        return stats_report(**query.validated_data, **narrowing)
    except ReportTooLarge as error:
        raise ServiceError(FailureReason.INVALID_REQUEST, str(error)) from error


def _first_error(errors: Any) -> str:
    for field, messages in dict(errors).items():
        name = "from" if field == "start" else field
        return f"{name}: {messages[0]}" if field != "non_field_errors" else str(messages[0])
    return "Invalid query."


class GlobalStatsView(APIView):
    @extend_schema(
        operation_id="stats_global",
        summary="Ingest figures of all slots over time (staff)",
        parameters=_query_parameters(provider=True),
        responses={200: GlobalStatsReportSerializer, 400: error_schema("invalid_request"), 403: None},
    )
    def get(self, request: Request) -> Response:
        report = _report(request, GlobalStatsQuerySerializer)
        return Response(GlobalStatsReportSerializer(report).data)


class SlotStatsView(APIView):
    @extend_schema(
        operation_id="stats_slot",
        summary="Ingest figures of one slot over time (staff)",
        parameters=[
            OpenApiParameter("slot_id", str, OpenApiParameter.PATH, description="slot-001 … slot-015"),
            *_query_parameters(provider=False),
        ],
        responses={
            200: StatsReportSerializer,
            400: error_schema("invalid_request"),
            403: None,
            404: error_schema("slot_not_found"),
        },
    )
    def get(self, request: Request, slot_id: str) -> Response:
        from slots.models import Slot

        if not Slot.objects.filter(id=slot_id[:16]).exists():
            raise ServiceError(FailureReason.SLOT_NOT_FOUND, f"No slot '{slot_id[:64]}'.")
        report = _report(request, StatsQuerySerializer, slot_id=slot_id)
        return Response(StatsReportSerializer(report).data)

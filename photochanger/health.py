"""``GET /healthz`` (the process serves) and ``GET /readyz`` (it can do its job), for load balancers and
orchestrators. No authentication; they reveal nothing but the names of the failing checks.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    failing = serializers.ListField(
        child=serializers.ChoiceField(choices=["database", "migrations", "worker"]), required=False
    )
    checks = serializers.DictField(child=serializers.CharField(), required=False)


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="healthz", summary="The process is up and serving", responses={200: HealthSerializer}
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"}, headers={"Cache-Control": "no-store"})


def readiness_checks() -> dict[str, str]:
    """Each check's result in words: "ok", or why not. Database first: the others need it."""
    checks: dict[str, str] = {}
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as error:
        return {
            "database": f"unreachable ({error.__class__.__name__})",
            "migrations": "unknown",
            "worker": "unknown",
        }
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    checks["migrations"] = "ok" if not pending else f"{len(pending)} not applied"
    from jobs.heartbeats import WORKER_SEEN_WITHIN, workers_seen

    seen = workers_seen()
    checks["worker"] = (
        f"ok ({len(seen)} seen)" if seen else f"no worker seen in the last {WORKER_SEEN_WITHIN.seconds} s"
    )
    return checks


class ReadinessView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="readyz",
        summary="Ready: the database answers, migrations are applied, a worker was seen in the last 30 s",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(response=HealthSerializer, description="`failing` names the failing checks"),
        },
    )
    def get(self, request: Request) -> Response:
        checks = readiness_checks()
        failing = [name for name, result in checks.items() if not result.startswith("ok")]
        body: dict[str, Any] = {"status": "unavailable" if failing else "ok", "checks": checks}
        if failing:
            body["failing"] = failing
        return Response(body, status=503 if failing else 200, headers={"Cache-Control": "no-store"})

"""REST API (DRF): jobs from JobSpec JSON, their rounds, cancel and delete.

Session and token auth (`Authorization: Token <key>`); every object is the
caller's own. A rejected spec answers 400 with field-named errors:
`{"errors": [{"field": "partition.alpha", "message": "..."}]}`. A body the parser refuses
(webui.parsers: too large 413, too deep or not JSON 400, a non-finite number or a NUL
character 400 naming its field) has the same shape, with `"field": "body"` for the body.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobspec import JobSpec
from orchestrator import selectors, submit
from orchestrator.fl.records import CORE_FIGURES
from orchestrator.limits import SpecRejected
from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.services import jobs

from .shortcuts import own_job_or_404


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The JobSpec JSON schema with its `$defs` references inlined, as OpenAPI accepts it."""
    defs = schema.get("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
                extra = {k: v for k, v in node.items() if k != "$ref"}
                return expand({**target, **extra})
            return {k: expand(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [expand(item) for item in node]
        return node

    return expand(schema)


JOBSPEC_SCHEMA = inline_refs(JobSpec.model_json_schema())
CREATE_REQUEST_SCHEMA = {
    "oneOf": [
        JOBSPEC_SCHEMA,
        {
            "type": "object",
            "properties": {"spec": JOBSPEC_SCHEMA, "prompt": {"type": "string"}},
            "required": ["spec"],
        },
    ]
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        }
    },
}


class JobSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "display_name",
            "name",
            "status",
            "error",
            "spec",
            "prompt",
            "rounds_total",
            "current_round",
            "progress_percent",
            "final_accuracy",
            "final_loss",
            "best_accuracy",
            "best_round",
            "bytes_up_total",
            "bytes_down_total",
            "client_cpu_s_total",
            "wall_s_total",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class ClientUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClientUpdate
        fields = [
            "client_id",
            "status",
            "num_examples",
            "train_loss",
            "bytes_up",
            "bytes_down",
            "cpu_s",
            "wall_s",
            "metrics",
            "error",
        ]
        read_only_fields = fields


class RoundSerializer(serializers.ModelSerializer):
    clients = ClientUpdateSerializer(source="client_updates", many=True, read_only=True)

    class Meta:
        model = Round
        fields = [
            "number",
            *CORE_FIGURES,
            "selected",
            "failures",
            "metrics",
            "started_at",
            "completed_at",
            "clients",
        ]
        read_only_fields = fields


ROUND_FIELDS = [name for name in RoundSerializer.Meta.fields if name != "clients"]


def _user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionError("authentication required")
    return user


class JobListCreate(generics.ListAPIView):
    serializer_class = JobSerializer

    def get_queryset(self) -> Any:
        return selectors.jobs_for_user(user=self.request.user)

    @extend_schema(
        request={"application/json": CREATE_REQUEST_SCHEMA},
        responses={
            201: JobSerializer,
            400: OpenApiResponse(ERROR_SCHEMA, description="field-named errors"),
            413: OpenApiResponse(ERROR_SCHEMA, description='the body is too large ("field": "body")'),
        },
        description='Create a job from a JobSpec (or from {"spec": JobSpec, "prompt": text}).',
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            return Response(
                {"errors": [{"field": "spec", "message": "the body must be a JSON object"}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        spec, prompt = (body["spec"], str(body.get("prompt", ""))) if "spec" in body else (body, "")
        if not isinstance(spec, dict):
            return Response(
                {"errors": [{"field": "spec", "message": "must be a JSON object"}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            job = submit.job_submit(owner=_user(request), spec=spec, prompt=prompt)
        except SpecRejected as rejected:
            return Response({"errors": rejected.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetail(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(JobSerializer(own_job_or_404(request.user, job_id)).data)

    @extend_schema(responses={204: None, 409: ERROR_SCHEMA})
    def delete(self, request: Request, job_id: int) -> Response:
        try:
            jobs.job_delete(job=own_job_or_404(request.user, job_id))
        except jobs.JobBusy as busy:
            return Response(
                {"errors": [{"field": "status", "message": str(busy)}]}, status=status.HTTP_409_CONFLICT
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobRounds(APIView):
    """The job's completed rounds with per-client figures, oldest first."""

    @extend_schema(responses=RoundSerializer(many=True))
    def get(self, request: Request, job_id: int) -> Response:
        # Rows straight from the database: RoundSerializer's fields, without building a model
        # and a serializer per client (equal output, test_api's test_rounds_rows_are_the_serializers).
        rows = selectors.completed_rounds_rows(
            job=own_job_or_404(request.user, job_id),
            fields=ROUND_FIELDS,
            client_fields=ClientUpdateSerializer.Meta.fields,
        )
        return Response(rows)


class JobCancel(APIView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        job = jobs.job_cancel(job=own_job_or_404(request.user, job_id))
        return Response(JobSerializer(job).data)


class SpecSchema(APIView):
    """The JobSpec JSON schema: every field, enum, default and bound."""

    @extend_schema(responses={200: OpenApiResponse(description="JSON schema of JobSpec")})
    def get(self, request: Request) -> Response:
        return Response(JobSpec.model_json_schema())

"""REST API for HPO: studies (an HPO job's trials, curves and best spec) and a finished job's suggestions.

A study is created by creating a job whose spec has `hpo.enabled` (POST /api/jobs/);
cancelling the study cancels that job and its trials. Every object is the caller's own.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import selectors as job_selectors
from orchestrator.hpo import selectors
from orchestrator.hpo.services import studies
from orchestrator.models import Study


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="dotted JobSpec field")
    to = serializers.JSONField(help_text="the proposed value")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.JSONField(help_text="the value in the spec it changes")
        return fields


class TrialSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["running", "complete", "pruned", "failed", "cancelled"])
    proposed_by = serializers.CharField(help_text="base (your spec), optuna or llm")
    reason = serializers.CharField()
    job_id = serializers.IntegerField(help_text="the trial's own job")
    value = serializers.FloatField(allow_null=True, help_text="validation objective, last reported")
    rounds_run = serializers.IntegerField()
    rounds_total = serializers.IntegerField()
    changes = ChangeSerializer(many=True)
    curve = serializers.ListField(
        child=serializers.FloatField(allow_null=True), help_text="validation objective per round"
    )


class BestSoFarSerializer(serializers.Serializer):
    trial = serializers.IntegerField()
    value = serializers.FloatField()
    best = serializers.FloatField()


class StudySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.IntegerField(help_text="the HPO job")
    status = serializers.ChoiceField(choices=Study.Status.choices)
    error = serializers.CharField(allow_blank=True)
    objective = serializers.CharField()
    trials_total = serializers.IntegerField()
    parallel_trials = serializers.IntegerField()
    trials_finished = serializers.IntegerField()
    base_spec = serializers.JSONField()
    best_trial = serializers.IntegerField(allow_null=True)
    best_spec = serializers.JSONField(allow_null=True, help_text="the best trial's spec as a plain job")
    best_changes = ChangeSerializer(many=True)
    final_job_id = serializers.IntegerField(allow_null=True, help_text="the best spec's run on all the data")
    test_accuracy = serializers.FloatField(allow_null=True, help_text="the best spec's test accuracy")
    test_loss = serializers.FloatField(allow_null=True)
    best_so_far = BestSoFarSerializer(many=True)
    trials = TrialSerializer(many=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class SuggestionSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    reason = serializers.CharField()
    proposed_by = serializers.CharField(help_text="diagnostics or llm")
    changes = ChangeSerializer(many=True)
    spec = serializers.JSONField(help_text="the full changed JobSpec, ready to POST to /api/jobs/")


class JobSuggestionsSerializer(serializers.Serializer):
    ready = serializers.BooleanField(help_text="false until the job has ended and its curves were read")
    suggestions = SuggestionSerializer(many=True)


def _own_study(request: Request, study_id: int) -> Study:
    study = selectors.study_for_user(user=request.user, study_id=study_id)
    if study is None:
        raise Http404("no such study")
    return study


def _study_data(study: Study) -> dict[str, Any]:
    return dict(StudySerializer(selectors.study_view(study=study).as_dict()).data)


class StudyList(APIView):
    @extend_schema(responses=StudySerializer(many=True), description="The caller's studies, newest first.")
    def get(self, request: Request) -> Response:
        return Response([_study_data(study) for study in selectors.studies_for_user(user=request.user)])


class StudyDetail(APIView):
    @extend_schema(responses=StudySerializer)
    def get(self, request: Request, study_id: int) -> Response:
        return Response(_study_data(_own_study(request, study_id)))


class StudyCancel(APIView):
    @extend_schema(request=None, responses=StudySerializer, description="Cancel the study and its trials.")
    def post(self, request: Request, study_id: int) -> Response:
        return Response(_study_data(studies.study_cancel(study=_own_study(request, study_id))))


class JobSuggestionList(APIView):
    @extend_schema(
        responses=JobSuggestionsSerializer, description="Changed specs proposed for a finished job."
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = job_selectors.job_for_user(user=request.user, job_id=job_id)
        if job is None:
            raise Http404("no such job")
        views = selectors.job_suggestions(job=job)
        data = {"ready": views is not None, "suggestions": [view.as_dict() for view in views or []]}
        return Response(JobSuggestionsSerializer(data).data)

"""HPO's pages and API, included by webui/urls.py."""

from django.urls import path

from . import hpo_api, hpo_views

urlpatterns = [
    path("studies/<int:study_id>/", hpo_views.study_detail, name="hpo_study_detail"),
    path("studies/<int:study_id>/live/", hpo_views.study_live, name="hpo_study_live"),
    path("studies/<int:study_id>/cancel/", hpo_views.study_cancel, name="hpo_study_cancel"),
    path("studies/<int:study_id>/apply/", hpo_views.study_apply, name="hpo_study_apply"),
    path("jobs/<int:job_id>/hpo/", hpo_views.job_panel, name="hpo_job_panel"),
    path(
        "jobs/<int:job_id>/suggestions/<int:rank>/apply/",
        hpo_views.suggestion_apply,
        name="hpo_suggestion_apply",
    ),
    path("api/studies/", hpo_api.StudyList.as_view(), name="api-study-list"),
    path("api/studies/<int:study_id>/", hpo_api.StudyDetail.as_view(), name="api-study-detail"),
    path("api/studies/<int:study_id>/cancel/", hpo_api.StudyCancel.as_view(), name="api-study-cancel"),
    path(
        "api/jobs/<int:job_id>/suggestions/", hpo_api.JobSuggestionList.as_view(), name="api-job-suggestions"
    ),
]

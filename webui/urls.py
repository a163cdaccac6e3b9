from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import api, views
from .healthz import healthz

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/new/", views.job_new, name="job_new"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:job_id>/delete/", views.job_delete, name="job_delete"),
    path("jobs/<int:job_id>/weights.safetensors", views.job_weights, name="job_weights"),
    path("jobs/<int:job_id>/metrics.csv", views.job_metrics_csv, name="job_metrics_csv"),
    path("jobs/<int:job_id>/metrics.json", views.job_metrics_json, name="job_metrics_json"),
    path("data/", views.data_list, name="data_list"),
    path("data/<str:name>/delete/", views.data_delete, name="data_delete"),
    path("account/token/", views.account_token, name="account_token"),
    path("account/token/revoke-all/", views.account_token_revoke_all, name="account_token_revoke_all"),
    path("account/token/<str:token_key>/revoke/", views.account_token_revoke, name="account_token_revoke"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/jobs/", api.JobListCreate.as_view(), name="api-job-list"),
    path("api/jobs/<int:job_id>/", api.JobDetail.as_view(), name="api-job-detail"),
    path("api/jobs/<int:job_id>/rounds/", api.JobRounds.as_view(), name="api-job-rounds"),
    path("api/jobs/<int:job_id>/cancel/", api.JobCancel.as_view(), name="api-job-cancel"),
    path("api/spec/schema/", api.SpecSchema.as_view(), name="api-spec-schema"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", healthz, name="healthz"),
    path("", include("webui.hpo_urls")),
    path("", include("webui.intent_urls")),
    path("admin/", admin.site.urls),
]

"""The prompt box's parse view and the REST parse endpoint, included by webui/urls.py."""

from django.urls import path

from . import intents

urlpatterns = [
    path("jobs/new/parse/", intents.intent_parse, name="intent_parse"),
    path("api/intents/parse", intents.IntentParse.as_view(), name="api-intent-parse"),
    path("api/intents/parse/", intents.IntentParse.as_view(), name="api-intent-parse-slash"),
]

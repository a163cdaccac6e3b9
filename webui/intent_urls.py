"""The prompt box's parse view and the REST parse endpoint, included by webui/urls.py.

The endpoint answers with and without its trailing slash; the API schema lists only the
slash form (the other view has no schema), so each operation appears once."""

from django.urls import path

from . import intents

urlpatterns = [
    path("jobs/new/parse/", intents.intent_parse, name="intent_parse"),
    path("api/intents/parse/", intents.IntentParse.as_view(), name="api-intent-parse-slash"),
    path("api/intents/parse", intents.IntentParse.as_view(schema=None), name="api-intent-parse"),
]

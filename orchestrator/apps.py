from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Federated jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The Celery tasks and the worker-start resume; HPO follows job events (studies, suggestions).
        from . import tasks  # noqa: F401
        from .hpo import receivers  # noqa: F401

from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Federated jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from .fl.config import configure_engine

        # The engine's directories, downloads and threads: from settings, read once.
        configure_engine(settings.FLOTILLA_ENGINE)
        # The Celery tasks and the worker-start resume; HPO follows job events (studies, suggestions).
        from . import tasks  # noqa: F401
        from .hpo import receivers  # noqa: F401

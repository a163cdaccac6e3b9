from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Federated jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # HPO follows job events (studies, suggestions) and registers its Celery tasks.
        from .hpo import receivers  # noqa: F401

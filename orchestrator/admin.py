from django.contrib import admin

from .models import ClientUpdate, Job, MetricPoint, Round


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "display_name",
        "owner",
        "status",
        "current_round",
        "rounds_total",
        "final_accuracy",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("name", "owner__username")
    readonly_fields = ("created_at", "started_at", "finished_at")


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("job", "number", "status", "accuracy", "loss", "bytes_up", "bytes_down", "wall_s")
    list_filter = ("status",)


@admin.register(ClientUpdate)
class ClientUpdateAdmin(admin.ModelAdmin):
    list_display = (
        "round",
        "client_id",
        "status",
        "num_examples",
        "train_loss",
        "bytes_up",
        "cpu_s",
        "worker",
    )
    list_filter = ("status",)


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ("job", "round", "name", "value")
    list_filter = ("name",)

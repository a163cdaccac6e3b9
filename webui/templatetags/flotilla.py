"""Template helpers: optional include points, byte and metric formatting."""

from __future__ import annotations

from typing import Any, cast

from django import template
from django.template import Context
from django.template.loader import get_template
from django.utils.safestring import SafeString

from orchestrator.selectors import metric_label

register = template.Library()


@register.simple_tag(takes_context=True)
def include_if_exists(context: Context, template_name: str) -> SafeString:
    """Render `template_name` with the page's context if some part of Flotilla provides it.

    The pages' extension points: the intent parser's prompt box ("intent/prompt_box.html")
    on the new-job page, HPO suggestions ("hpo/job_suggestions.html") on the job page.
    """
    try:
        found = get_template(template_name)
    except template.TemplateDoesNotExist:
        return SafeString("")
    page_context = cast(dict[str, Any], context.flatten())
    return SafeString(found.render(page_context, context.get("request")))


@register.filter
def human_bytes(value: Any) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def metric_name(name: str) -> str:
    return metric_label(name)


@register.filter
def figure(value: Any, digits: int = 4) -> str:
    """A metric for display: floats to `digits` significant figures, missing as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@register.filter
def setting(value: Any) -> str:
    """A spec value in a diff: null as "default", floats to 4 significant figures."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(setting(item) for item in value) + "]"
    return str(value)


@register.filter
def percent(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


@register.filter
def duration(seconds: Any) -> str:
    """Seconds as a person reads a span of time: "42 s", "3 min 5 s", "1 h 12 min"."""
    total = max(0, round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"

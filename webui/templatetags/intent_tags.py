"""Template helpers for the prompt box."""

from __future__ import annotations

from django import template

from intent_llm.parser import MAX_PROMPT_CHARS

register = template.Library()


@register.simple_tag
def intent_max_chars() -> int:
    """The longest prompt the parser reads; longer ones are refused with a message."""
    return MAX_PROMPT_CHARS

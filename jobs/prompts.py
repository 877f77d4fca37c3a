"""Prompts with ``{field}`` placeholders filled from the text fields the booth sent.

A slot's prompt may name any field of the booth's request (``name``, ``user_id``, DSLR Remote Pro survey
answers, …) in braces; ``{{`` and ``}}`` stand for literal braces. At ingest each placeholder becomes
the field's value, cut to ``MAX_VALUE_LENGTH`` characters and stripped of control characters; a field
the booth did not send becomes empty. The prompt actually sent is recorded on the job (``prompt_sent``).
Staff saving a prompt with an unbalanced brace are refused (``prompt_problem``).

Plain functions: no Django models, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# The provider setting that holds the prompt (every provider with one calls it so).
PROMPT_SETTING = "prompt"
MAX_VALUE_LENGTH = 200
# Field names: what a form field name can reasonably be, without braces or whitespace.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\s]{1,100})\}|[{}]")


class UnbalancedBraces(ValueError):
    """A lone ``{`` or ``}`` (neither doubled nor part of a ``{field}``)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"unbalanced brace at character {position + 1}")
        self.position = position


def _clean_value(value: Any) -> str:
    """A booth field as prompt text: the first value of a repeated field, no control characters, ≤ 200."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        return ""
    kept = "".join(
        " " if char in "\t\r\n" else char for char in value if char in "\t\r\n" or not _control(char)
    )
    return kept.strip()[:MAX_VALUE_LENGTH]


def _control(char: str) -> bool:
    # Cc: C0/C1 controls, DEL; Cf: format characters (bidi overrides, zero-width) that can hide text.
    return unicodedata.category(char) in {"Cc", "Cf"}


def prompt_fill(template: str, fields: Mapping[str, Any]) -> str:
    """``template`` with each ``{field}`` replaced by the booth's value (empty when not sent).

    Raises ``UnbalancedBraces`` for a lone brace (saved prompts never have one: ``prompt_problem``).
    """
    pieces: list[str] = []
    position = 0
    for match in _TOKEN.finditer(template):
        pieces.append(template[position : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        elif match.group(1) is not None:
            name = match.group(1)
            pieces.append("" if name.startswith("_") else _clean_value(fields.get(name)))
        else:
            raise UnbalancedBraces(match.start())
        position = match.end()
    pieces.append(template[position:])
    return "".join(pieces)


def prompt_problem(template: str) -> int | None:
    """The position of the first unbalanced brace in ``template``, or None when it can be filled."""
    try:
        prompt_fill(template, {})
    except UnbalancedBraces as error:
        return error.position
    return None


def settings_prompt_sent(settings: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    """The prompt a provider with these settings is sent for a booth request with ``fields`` ("" if none).

    A prompt that cannot be filled (saved before the brace rule) is sent as it stands.
    """
    template = settings.get(PROMPT_SETTING)
    if not isinstance(template, str):
        return ""
    try:
        return prompt_fill(template, fields)
    except UnbalancedBraces:
        return template

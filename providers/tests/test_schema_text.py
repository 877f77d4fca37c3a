"""Every word of the settings schemas that staff read on the slot page is in the catalogue, in Russian."""

import json

from django.utils import translation

from providers.schema_text import SCHEMA_TEXTS
from providers.schemas import schema_dir


def schema_texts() -> set[str]:
    texts: set[str] = set()

    def walk(node: dict) -> None:
        texts.update(node[key] for key in ("title", "description") if key in node)
        for child in node.get("properties", {}).values():
            walk(child)

    for path in schema_dir().glob("*.json"):
        walk(json.loads(path.read_text()))
    return texts


def test_every_schema_title_and_description_is_listed_for_translation():
    assert schema_texts() - SCHEMA_TEXTS == set()


def test_every_schema_title_and_description_has_a_russian_translation():
    with translation.override("ru"):
        untranslated = sorted(text for text in schema_texts() if translation.gettext(text) == text)
    assert untranslated == []

"""Prompts with {field} placeholders filled from the booth's fields (jobs.prompts)."""

from __future__ import annotations

import pytest

from jobs.prompts import UnbalancedBraces, prompt_fill, prompt_problem, settings_prompt_sent


def test_placeholders_take_the_booth_fields_and_doubled_braces_stay_literal():
    filled = prompt_fill("{{style}} portrait of {name} for {drink}", {"name": "Anna", "drink": "tea"})
    assert filled == "{style} portrait of Anna for tea"


def test_a_field_the_booth_did_not_send_becomes_empty():
    assert prompt_fill("hello {name}{missing}!", {"name": "Bob"}) == "hello Bob!"


def test_values_are_cut_to_200_characters_and_stripped_of_control_characters():
    value = "A\x00B\x1b[31mC\u202eD\tE\n" + "x" * 500
    filled = prompt_fill("<{answer}>", {"answer": value})
    assert filled.startswith("<AB[31mCD E ")
    assert "\x00" not in filled and "\x1b" not in filled and "\u202e" not in filled
    assert len(filled) == 200 + 2


def test_a_repeated_field_gives_its_first_value_and_internal_fields_are_never_filled():
    fields = {"colour": ["red", "blue"], "_upload": {"filename": "IMG_0003.JPG"}}
    assert prompt_fill("{colour} {_upload}", fields) == "red "


@pytest.mark.parametrize("template", ["a {b", "a } b", "{a}}", "{{a}", "{ a }", "{}"])
def test_an_unbalanced_brace_is_refused_with_its_position(template):
    with pytest.raises(UnbalancedBraces):
        prompt_fill(template, {"a": "x"})
    assert prompt_problem(template) is not None


def test_a_prompt_without_placeholders_is_sent_as_it_is():
    assert prompt_problem("make it a watercolour") is None
    assert settings_prompt_sent({"prompt": "make it a watercolour"}, {"name": "x"}) == "make it a watercolour"


def test_settings_without_a_prompt_send_none():
    assert settings_prompt_sent({"quality": 90}, {"name": "x"}) == ""

"""Prompts from booth fields through the real pipeline (issue 12): a replayed DSLR Remote Pro request with
survey answers fills the slot's {field} placeholders; the prompt actually sent is recorded on the job;
a prompt with an unbalanced brace is refused when saved."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from conftest import INGEST_PASSWORD
from jobs.models import Job
from jobs.tests.booth import booth_fields, booth_post, make_jpeg, multipart_body
from slots.models import Slot
from slots.services import slot_update

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "Portrait of {name} as a {survey_hero}; {{keep these braces}}; {not_sent}."


def test_the_booths_fields_fill_the_prompt_sent_to_gemini_and_it_is_recorded(
    service, worker, studio, fake_gemini
):
    slot_update(
        slot=Slot.objects.get(id="slot-001"),
        fields={
            "provider": "gemini",
            "operation": "image_edit",
            "settings": {"prompt": PROMPT},
            "is_active": True,
        },
    )
    photo = make_jpeg(160, 120)
    # DSLR Remote Pro's own fields (name = the booth PC) plus a survey answer with a control character.
    fields = [*booth_fields(photo, INGEST_PASSWORD), ("survey_hero", "pirate\x1b captain" + "!" * 300)]
    response = booth_post(service.port, "/ingest/slot-001", multipart_body(fields, photo=photo))
    assert response.status == 200, response.body[:300]

    hero = ("pirate captain" + "!" * 300)[:200]
    expected = f"Portrait of DESKTOP-K968T3F as a {hero}; {{keep these braces}}; ."
    sent = fake_gemini.requests[-1]["body"]["contents"][0]["parts"][-1]["text"]
    assert sent == expected
    job = Job.objects.get(id=response.headers["x-job-id"])
    assert job.prompt_sent == expected
    assert job.provider_settings["prompt"] == PROMPT, "the slot's prompt is kept as configured"
    assert job.attempts[0]["prompt"] == expected


@pytest.mark.parametrize("prompt", ["Portrait of {name", "a } b", "{}"])
def test_a_prompt_with_an_unbalanced_brace_is_refused_on_save(studio, prompt):
    slot = Slot.objects.get(id="slot-002")
    with pytest.raises(ValidationError) as refused:
        slot_update(
            slot=slot,
            fields={"provider": "gemini", "operation": "image_edit", "settings": {"prompt": prompt}},
        )
    assert "prompt: " in refused.value.message_dict["settings"][0]
    assert Slot.objects.get(id="slot-002").version == slot.version

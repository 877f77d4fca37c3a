"""Helpers shared by the provider end-to-end tests."""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile

from conftest import INGEST_PASSWORD, Service
from jobs.tests.booth import BoothResponse, booth_fields, booth_post, make_jpeg, make_png, multipart_body
from slots.models import Slot, SlotTemplateBinding, TemplateMedia
from slots.services import template_media_save


def configure_slot(slot_id: str, provider: str, operation: str, settings: dict[str, Any]) -> str:
    Slot.objects.filter(id=slot_id).update(
        provider=provider, operation=operation, settings=settings, is_active=True
    )
    return slot_id


def bind_template(slot_id: str, role: str, name: str = "Template", image: bytes | None = None) -> bytes:
    data = image if image is not None else make_png(48, 48)
    template = TemplateMedia(name=name)
    template.file.save(f"{name.lower()}.png", ContentFile(data), save=False)
    template_media_save(template=template)
    SlotTemplateBinding.objects.create(slot_id=slot_id, template=template, role=role)
    return data


def post_photo(service: Service, slot_id: str, photo: bytes | None = None) -> tuple[bytes, BoothResponse]:
    photo = photo if photo is not None else make_jpeg()
    body = multipart_body(booth_fields(photo, INGEST_PASSWORD), photo=photo)
    return photo, booth_post(service.port, f"/ingest/{slot_id}", body)

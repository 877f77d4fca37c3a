"""Writes to studio configuration: slots, global settings, the ingest password."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image

from jobs.prompts import PROMPT_SETTING, prompt_problem
from media import storage
from providers.kinds import NETWORK_PROVIDER_KINDS
from providers.registry import validate_slot_configuration
from providers.services import provider_key_get
from slots.models import Slot, StudioSettings, TemplateMedia, static_slot_ids


def slots_ensure_static() -> int:
    """Create any of the 15 static slots that are missing; returns how many were created. Idempotent."""
    existing = set(Slot.objects.values_list("id", flat=True))
    missing = [
        Slot(id=slot_id, display_name=slot_id) for slot_id in static_slot_ids() if slot_id not in existing
    ]
    Slot.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def studio_settings_get() -> StudioSettings:
    """The settings singleton, created with defaults on first use."""
    studio, _created = StudioSettings.objects.get_or_create(
        id=StudioSettings.SINGLETON_ID,
        defaults={
            "sync_response_seconds": settings.SYNC_RESPONSE_DEFAULT_SECONDS,
            "result_retention_hours": settings.RESULT_RETENTION_DEFAULT_HOURS,
            "public_link_ttl_seconds": settings.PUBLIC_LINK_TTL_DEFAULT_SECONDS,
        },
    )
    return studio


def validate_sync_response_seconds(value: int) -> None:
    """The sync window rule (admin field and services): a plain error, so a form field can carry it."""
    low, high = settings.SYNC_RESPONSE_MIN_SECONDS, settings.SYNC_RESPONSE_MAX_SECONDS
    if not low <= value <= high:
        raise ValidationError(
            _("The sync window must be between %(low)s and %(high)s seconds."),
            code="sync_window_range",
            params={"low": low, "high": high},
        )


# Provider calls in flight at once across all workers, per capped provider (NETWORK_PROVIDER_KINDS).
PROVIDER_CAP_MIN = 1
PROVIDER_CAP_MAX = 1000


def validate_provider_cap(*, provider: str, cap: int) -> None:
    """The provider cap rule: a capped provider, within the range (the admin's fields use the same bounds)."""
    if provider not in NETWORK_PROVIDER_KINDS:
        raise ValidationError(
            _("%(provider)s has no concurrency cap; capped providers: %(capped)s."),
            code="provider_not_capped",
            params={"provider": provider, "capped": ", ".join(NETWORK_PROVIDER_KINDS)},
        )
    if not PROVIDER_CAP_MIN <= cap <= PROVIDER_CAP_MAX:
        raise ValidationError(
            _("The cap for %(provider)s must be between %(low)s and %(high)s calls."),
            code="provider_cap_range",
            params={"provider": provider, "low": PROVIDER_CAP_MIN, "high": PROVIDER_CAP_MAX},
        )


@dataclass(frozen=True)
class StudioSettingsChange:
    sync_response_seconds: int | None = None
    result_retention_hours: int | None = None
    public_link_ttl_seconds: int | None = None
    history_retention_days: int | None = None
    # Caps to set, by provider; providers not named keep theirs.
    provider_concurrency: Mapping[str, int] | None = None
    keep_late_results: bool | None = None
    late_result_grace_seconds: int | None = None


def studio_settings_update(*, change: StudioSettingsChange, user: User | None = None) -> StudioSettings:
    """Validate and apply a change to the global settings (the same rules for admin and commands).

    Raises ``ValidationError`` keyed by field; nothing is saved then.
    """
    with transaction.atomic():
        studio_settings_get()
        studio = StudioSettings.objects.select_for_update().get(id=StudioSettings.SINGLETON_ID)
        if change.sync_response_seconds is not None:
            try:
                validate_sync_response_seconds(change.sync_response_seconds)
            except ValidationError as error:
                raise ValidationError({"sync_response_seconds": error}) from error
            studio.sync_response_seconds = change.sync_response_seconds
        if change.result_retention_hours is not None:
            studio.result_retention_hours = change.result_retention_hours
        if change.public_link_ttl_seconds is not None:
            studio.public_link_ttl_seconds = change.public_link_ttl_seconds
        if change.history_retention_days is not None:
            studio.history_retention_days = change.history_retention_days
        if change.keep_late_results is not None:
            studio.keep_late_results = change.keep_late_results
        if change.late_result_grace_seconds is not None:
            studio.late_result_grace_seconds = change.late_result_grace_seconds
        if change.provider_concurrency:
            caps = dict(studio.provider_concurrency or {})
            for provider, cap in change.provider_concurrency.items():
                try:
                    validate_provider_cap(provider=provider, cap=cap)
                except ValidationError as error:
                    raise ValidationError({"provider_concurrency": error}) from error
                caps[provider] = cap
            # Every claim reads the caps from this row (jobs.services.jobs_claim): effective at once.
            studio.provider_concurrency = caps
        studio.updated_by = user
        studio.full_clean()
        studio.save()
    return studio


MIN_INGEST_PASSWORD_LENGTH = 6


def ingest_password_set(*, password: str, user: User | None = None) -> StudioSettings:
    """Rotate the global ingest password. Only its hash is stored; the old password stops working at once."""
    if len(password) < MIN_INGEST_PASSWORD_LENGTH:
        raise ValidationError(
            {
                "ingest_password": _("The ingest password must be at least %(n)s characters long.")
                % {"n": MIN_INGEST_PASSWORD_LENGTH}
            }
        )
    studio_settings_get()
    StudioSettings.objects.filter(id=StudioSettings.SINGLETON_ID).update(
        ingest_password_hash=make_password(password),
        ingest_password_rotated_at=timezone.now(),
        ingest_password_rotated_by=user,
    )
    return studio_settings_get()


def ingest_password_check(*, stored_hash: str, candidate: str) -> bool:
    """True when ``candidate`` is the configured ingest password. No password configured: always False.

    The plain, slow check. The ingest hot path uses ``slots.passwords.ingest_password_checker``, which
    remembers results and hashes on its own thread.
    """
    if not stored_hash or not candidate:
        return False
    return bool(check_password(candidate, stored_hash))


# Where slot_configuration_errors puts problems with the bound templates (the slot's inline in admin).
TEMPLATE_BINDINGS = "template_bindings"


@dataclass(frozen=True)
class SlotConfigurationProblems:
    """Why a slot cannot be active, by where staff correct it."""

    # by slot field: provider, operation, is_active
    fields: dict[str, list[str]] = field(default_factory=dict)
    # by setting name (``retry_policy.max_attempts`` for a nested one; ``settings`` for the whole object)
    settings: dict[str, str] = field(default_factory=dict)
    # about the bound templates
    templates: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.settings or self.templates)


def slot_configuration_problems(*, slot: Slot, template_roles: Sequence[str]) -> SlotConfigurationProblems:
    """Why ``slot``, with the values it carries and templates bound in ``template_roles``, cannot be active.

    Always empty for an inactive slot (it may hold incomplete settings). Problems with slot fields and
    settings never depend on ``template_roles``.
    """
    problems = SlotConfigurationProblems()
    if not slot.is_active:
        return problems
    found = validate_slot_configuration(
        provider=slot.provider,
        operation=slot.operation,
        settings=slot.settings,
        template_roles=list(template_roles),
    )
    for name, message in found.items():
        if name in {"provider", "operation"}:
            problems.fields.setdefault(name, []).append(message)
        elif name == "templates":
            problems.templates.append(message)
        else:
            problems.settings[name] = message
    # Without a key every job on the slot would fail at the provider (a 502 at the booth): refuse now.
    if slot.provider in NETWORK_PROVIDER_KINDS and not provider_key_get(provider=slot.provider):
        problems.fields["is_active"] = [
            _("No API key is configured for this provider; add one in Studio settings.")
        ]
    return problems


def slot_configuration_errors(*, slot: Slot, template_roles: Sequence[str]) -> dict[str, list[str]]:
    """``slot_configuration_problems`` keyed by the slot field to correct, as ``ValidationError`` takes it.

    Keys: ``provider``, ``operation``, ``settings`` (each message prefixed with the setting's name),
    ``is_active``, ``TEMPLATE_BINDINGS``; {} when the slot can be active.
    """
    problems = slot_configuration_problems(slot=slot, template_roles=template_roles)
    errors: dict[str, list[str]] = {name: list(messages) for name, messages in problems.fields.items()}
    for name, message in problems.settings.items():
        errors.setdefault("settings", []).append(f"{name}: {message}")
    if problems.templates:
        errors[TEMPLATE_BINDINGS] = list(problems.templates)
    return errors


def slot_settings_problems(*, settings_value: Mapping[str, Any]) -> dict[str, str]:
    """Problems with the settings of any slot, active or not, by setting name: a prompt whose
    ``{field}`` placeholders cannot be filled (an unbalanced brace; ``jobs.prompts``)."""
    template = settings_value.get(PROMPT_SETTING)
    if isinstance(template, str) and (position := prompt_problem(template)) is not None:
        return {
            PROMPT_SETTING: _(
                "Unbalanced brace at character %(position)s: write {field} for a booth field and {{ or }} "
                "for a literal brace."
            )
            % {"position": position + 1}
        }
    return {}


def fallback_slot_errors(*, fallback: Slot) -> dict[str, list[str]]:
    """A slot chosen as a fallback must be one its provider could serve (active or not)."""
    candidate = Slot(
        id=fallback.id,
        provider=fallback.provider,
        operation=fallback.operation,
        settings=fallback.settings,
        is_active=True,
    )
    roles = list(fallback.template_bindings.values_list("role", flat=True))
    problems = slot_configuration_errors(slot=candidate, template_roles=roles)
    if not problems:
        return {}
    detail = "; ".join(" ".join(messages) for messages in problems.values())
    return {
        "fallback_slot": [
            _("%(slot)s cannot take photos as its configuration stands: %(problems)s")
            % {"slot": fallback.id, "problems": detail}
        ]
    }


def slot_version_lock(*, slot_id: str) -> int | None:
    """The slot's current version, its row locked until the surrounding transaction ends.

    Call it inside a transaction (the admin's change view is one): no other save of the slot can come
    between this check and the save that follows.
    """
    return Slot.objects.select_for_update().filter(id=slot_id).values_list("version", flat=True).first()


def slot_update(
    *,
    slot: Slot,
    fields: dict[str, Any],
    template_roles: Sequence[str] | None = None,
    user: User | None = None,
) -> Slot:
    """Apply a change to a slot with optimistic locking on ``version``.

    The changed slot must be valid: its fields, and (when active) its configuration with templates
    bound in ``template_roles`` — the roles being saved along with the slot, or, when not given, the
    ones bound now. Raises ``ValidationError`` by field (see ``slot_configuration_errors``), or without
    a field when the slot was changed by someone else since it was read.
    """
    for name, value in fields.items():
        setattr(slot, name, value)
    slot.updated_by = user
    slot.full_clean()
    if template_roles is None:
        template_roles = list(slot.template_bindings.values_list("role", flat=True))
    errors = slot_configuration_errors(slot=slot, template_roles=template_roles)
    for name, message in slot_settings_problems(settings_value=slot.settings or {}).items():
        errors.setdefault("settings", []).append(f"{name}: {message}")
    if slot.fallback_slot_id is not None and slot.fallback_slot_id == slot.id:
        errors.setdefault("fallback_slot", []).append(_("A slot cannot be its own fallback."))
    elif slot.fallback_slot_id is not None and "fallback_slot" in fields:
        errors.update(fallback_slot_errors(fallback=Slot.objects.get(id=slot.fallback_slot_id)))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        updated = Slot.objects.filter(id=slot.id, version=slot.version).update(
            **fields, updated_by=user, updated_at=timezone.now(), version=F("version") + 1
        )
        if updated != 1:
            raise ValidationError(
                _("This slot was changed by someone else in the meantime. Reload it and try again.")
            )
    slot.refresh_from_db()
    return slot


def template_media_save(*, template: Any, user: User | None = None) -> Any:
    """Save an uploaded template image, recording its real type (by bytes), size and checksum."""
    from media.images import sniff_image_type

    upload = template.file
    upload.open("rb")
    upload.seek(0)
    content = upload.read()
    upload.seek(0)
    detected = sniff_image_type(content)
    if detected is None:
        raise ValidationError({"file": _("The file is not a JPEG, PNG, WebP or HEIC image.")})
    template.mime_type = detected
    template.size_bytes = len(content)
    template.sha256 = hashlib.sha256(content).hexdigest()
    if user is not None and template.uploaded_by_id is None:
        template.uploaded_by = user
    template.save()
    return template


TEMPLATE_THUMBNAIL_SIDE = 240


def template_thumbnail_path(*, template: TemplateMedia) -> str | None:
    """The template's preview for staff pages: a PNG at most 240 px a side, made once, on first use.

    Returns its name in the media store, or None when the file cannot be read as an image here (HEIC
    without a decoder, a damaged file) or the store fails. Two requests making it at once both succeed (on the filesystem the
    first file wins; on S3 the second writes the same bytes again).
    """
    relative = f"templates/thumbnails/{template.pk}.png"
    try:
        if storage.exists(relative):
            return relative
        with storage.open_read(str(template.file.name)) as source, Image.open(source) as image:
            image.thumbnail((TEMPLATE_THUMBNAIL_SIDE, TEMPLATE_THUMBNAIL_SIDE))
            preview = image if image.mode in {"RGB", "RGBA", "L", "LA"} else image.convert("RGBA")
            buffer = io.BytesIO()
            preview.save(buffer, "PNG")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    try:
        storage.write_new(relative, buffer.getvalue())
    except FileExistsError:
        pass  # another request made it first
    except OSError:
        return None  # a full disk, the media store down: no preview now, another request tries again
    return relative

"""Create the 15 static slots (slot-001 … slot-015) and the studio settings singleton."""

from django.db import migrations


def create_static_slots(apps, schema_editor):
    Slot = apps.get_model("slots", "Slot")
    StudioSettings = apps.get_model("slots", "StudioSettings")
    for number in range(1, 16):
        slot_id = f"slot-{number:03d}"
        Slot.objects.get_or_create(id=slot_id, defaults={"display_name": slot_id})
    StudioSettings.objects.get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [("slots", "0001_initial")]

    operations = [migrations.RunPython(create_static_slots, migrations.RunPython.noop)]

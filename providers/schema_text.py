"""The staff-facing words of the settings schemas, for translation.

The schema files in ``spec/contracts/schemas`` are JSON, which ``makemessages`` cannot read: every
``title`` and ``description`` in them is listed here so it lands in the catalogue, and the slot page shows
``gettext(text)``. ``providers/tests/test_schema_text.py`` fails when a schema gains a text missing here.
"""

from django.utils.translation import gettext_noop

SCHEMA_TEXTS = frozenset(
    {
        # operations (schema titles and descriptions)
        gettext_noop("Edit the photo"),
        gettext_noop(
            "Gemini edits the photo by the prompt; bound templates (any role) are sent after the photo "
            "as references."
        ),
        gettext_noop(
            "GPT Image edits the photo by the prompt; bound templates are sent after the photo (at most "
            "16 images in all)."
        ),
        gettext_noop("Frame overlay"),
        gettext_noop("Overlays the bound frame template (a PNG with transparency) onto the photo."),
        gettext_noop("Black and white"),
        gettext_noop("Sepia"),
        gettext_noop("An offline effect: no key, no network."),
        gettext_noop("Resize"),
        gettext_noop("Fits the photo within the longest side set below."),
        gettext_noop("Image to image"),
        gettext_noop(
            "Turbotext redraws the photo by the prompt; it downloads the photo from a temporary link."
        ),
        gettext_noop("Mix with a style image"),
        gettext_noop("Turbotext mixes the photo with the bound style reference template."),
        gettext_noop("Face swap onto a template"),
        gettext_noop("Turbotext puts the guest's face onto the bound target template."),
        # settings (property titles and descriptions)
        gettext_noop("Prompt"),
        gettext_noop("What to do with the photo."),
        gettext_noop("What to do with the photo (sent to Turbotext as content)."),
        gettext_noop("Optional: a hint for the mix (sent to Turbotext as content)."),
        gettext_noop("Model"),
        gettext_noop("A Gemini image model id: choose one or type a newer one."),
        gettext_noop("A GPT Image model id."),
        gettext_noop("Aspect ratio"),
        gettext_noop("The shape of the result, width:height."),
        gettext_noop("Image size"),
        gettext_noop("Only for Gemini 3 Pro image models; 2.5 rejects it."),
        gettext_noop("Retries"),
        gettext_noop("Retries of retryable failures, always within the job's deadline."),
        gettext_noop("Attempts at most"),
        gettext_noop("Including the first call."),
        gettext_noop("Pause before a retry, seconds"),
        gettext_noop("Doubles after each attempt."),
        gettext_noop("Output format"),
        gettext_noop("Format of the image sent back to the booth."),
        gettext_noop("JPEG quality"),
        gettext_noop("1 is the smallest file, 95 the best picture."),
        gettext_noop("Longest side, pixels"),
        gettext_noop("Fit the image within this many pixels on its longer side."),
        gettext_noop("Size"),
        gettext_noop("The result's size in pixels; auto lets the model choose."),
        gettext_noop("Compression, %"),
        gettext_noop("Only with jpeg or webp."),
        gettext_noop("Quality"),
        gettext_noop("Higher quality takes longer."),
        gettext_noop("Restore the face"),
        gettext_noop("Sharpen the face after the swap."),
        gettext_noop("Polling interval, seconds"),
        gettext_noop("How often to ask Turbotext whether the result is ready."),
        gettext_noop("Strength"),
        gettext_noop("How much the photo may change."),
        gettext_noop("Seed"),
        gettext_noop("The same seed repeats the same result."),
        gettext_noop("Prompt weight"),
        gettext_noop("How closely to follow the prompt."),
        gettext_noop("Negative prompt"),
        gettext_noop("What must not appear in the result."),
        gettext_noop("Prompt language"),
        gettext_noop("A two-letter code, e.g. ru or en."),
        gettext_noop("Turbotext user id"),
        gettext_noop("Passed to Turbotext as user_id."),
    }
)

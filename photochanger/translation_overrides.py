"""Messages of Django and django-axes that our Russian catalogue translates anew.

The project's catalogue (LOCALE_PATHS) wins over the libraries' own: Django's "Add another …" puts the
inline's name after a masculine "один", and django-axes' Russian names are incomplete. Listing the
messages here keeps them in ``locale/ru/LC_MESSAGES/django.po`` when ``makemessages`` runs (a message
no source names would be marked obsolete and dropped from the compiled catalogue).
"""

from django.utils.translation import gettext_noop

OVERRIDDEN_MESSAGES = [
    gettext_noop("Add another %(verbose_name)s"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("IP Address"),
    gettext_noop("Username"),
    gettext_noop("User Agent"),
    gettext_noop("Path"),
    gettext_noop("Attempt Time"),
    gettext_noop("Failed Logins"),
]

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PhotoChangerConfig(AppConfig):
    name = "photochanger"
    verbose_name = _("PhotoChanger")

    def ready(self) -> None:
        from photochanger import checks  # noqa: F401  (registers system checks)

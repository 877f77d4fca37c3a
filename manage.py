#!/usr/bin/env python
"""Django's command-line utility for PhotoChanger."""

import os
import sys

# Commands whose --settings option means provider settings, not Django's settings module.
COMMANDS_WITH_OWN_SETTINGS_OPTION = {"configure_slot"}


def _protect_settings_option(argv: list[str]) -> list[str]:
    """Rename --settings for configure_slot before Django's pre-parse takes it for a settings module."""
    if len(argv) < 2 or argv[1] not in COMMANDS_WITH_OWN_SETTINGS_OPTION:
        return argv
    renamed = []
    for argument in argv:
        if argument == "--settings":
            argument = "--slot-settings"
        elif argument.startswith("--settings="):
            argument = "--slot-settings=" + argument.split("=", 1)[1]
        renamed.append(argument)
    return renamed


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(_protect_settings_option(sys.argv))


if __name__ == "__main__":
    main()

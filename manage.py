#!/usr/bin/env python
"""Django's command-line utility for PhotoChanger."""

import os
import sys
import warnings

# Commands whose --settings option means provider settings, not Django's settings module.
COMMANDS_WITH_OWN_SETTINGS_OPTION = {"configure_slot"}
# Commands that never touch the database: with DATABASE_URL unset they run without starting the embedded
# PostgreSQL server. Every other command starts (or reuses) it first and stops it on exit unless another
# process still holds it.
DATABASE_FREE_COMMANDS = {
    "help",
    "version",
    "--help",
    "-h",
    "--version",
    "check",
    "diffsettings",
    "makemigrations",
    "makemessages",
    "compilemessages",
    "collectstatic",
    "findstatic",
    "write_spec",
    "spectacular",
}


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


def _needs_database(argv: list[str]) -> bool:
    command = argv[1] if len(argv) > 1 else "help"
    if command == "check":
        return any(argument.startswith("--database") for argument in argv[2:])
    return command not in DATABASE_FREE_COMMANDS


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
    if _needs_database(sys.argv):
        from photochanger.embedded_db import ensure_database_url

        ensure_database_url()
    elif not os.environ.get("DATABASE_URL"):
        # makemigrations checks the applied migrations when it can reach a database and otherwise warns;
        # with no database started on purpose, the warning is noise.
        warnings.filterwarnings(
            "ignore", "Got an error checking a consistent migration history", RuntimeWarning
        )
    from django.core.management import execute_from_command_line

    execute_from_command_line(_protect_settings_option(sys.argv))


if __name__ == "__main__":
    main()

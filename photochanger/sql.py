"""Table and column names for hand-written SQL, taken from the models' ``_meta``.

The few statements written in SQL (the queue's claim and finalize) name their tables and columns
through these helpers, so renaming a model field breaks the import of the module holding the
statement (and every test), not a query in production.
"""

from __future__ import annotations

import re

from django.db import models

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def table(model: type[models.Model]) -> str:
    """The database table of ``model``."""
    return _checked(model._meta.db_table)


def column(model: type[models.Model], field_name: str) -> str:
    """The database column of ``model.field_name``; raises ``FieldDoesNotExist`` for an unknown field."""
    field = model._meta.get_field(field_name)
    name = getattr(field, "column", None)
    if not name:
        raise ValueError(f"{model.__name__}.{field_name} has no column of its own")
    return _checked(name)


class ModelNames:
    """``str()`` is the table; attributes are columns: ``{job}`` and ``{job.state}`` in ``sql()`` templates."""

    def __init__(self, model: type[models.Model]) -> None:
        self._model = model

    def __str__(self) -> str:
        return table(self._model)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __getattr__(self, field_name: str) -> str:
        if field_name.startswith("_"):
            raise AttributeError(field_name)
        return column(self._model, field_name)


def sql(template: str, **tables: type[models.Model]) -> str:
    """``template`` with ``{alias}`` replaced by tables and ``{alias.field}`` by columns of the models given.

    ``%(param)s`` placeholders pass through untouched. Literal braces must be doubled (``str.format``).
    """
    return template.format(**{alias: ModelNames(model) for alias, model in tables.items()})


def _checked(name: str) -> str:
    # Names go into SQL unquoted: accept only plain lower-case identifiers.
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return name

"""The JSON Schemas in ``schemas/`` and one way to check a value against them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator

from fenceproof.models import ConfigError


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator for ``schemas/<name>.schema.json``."""
    text = resources.files("fenceproof").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def check(name: str, value: object, path: str, line: int, what: str) -> None:
    """Raise ConfigError at path:line for the first way ``value`` breaks schema ``name``."""
    errors = sorted(validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = errors[0]
    where = ".".join(str(p) for p in error.absolute_path)
    subject = f"{what} '{where}'" if where else what
    raise ConfigError(path, line, f"{subject}: {_explain(error)}")


def _explain(error) -> str:  # type: ignore[no-untyped-def]
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern" and error.schema.get("description"):
        return f"{error.instance!r} is not valid: {error.schema['description']}"
    if error.validator in ("if", "then", "not", "anyOf", "allOf"):
        return (
            "attribute combination not allowed (mode lint/skip need reason; reason needs mode; "
            "match needs expect raises/warns; file takes no mode or expect)"
        )
    return error.message

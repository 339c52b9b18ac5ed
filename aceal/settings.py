"""Typed settings: one validation mechanism and one YAML loader for every aceal config.

The configs of ``aceal fit`` (:mod:`aceal.fit.config`), ``aceal-loop``
(:mod:`aceal.loop.config`) and ``aceal validate`` are trees of :class:`Settings`, pydantic
models that forbid unknown keys, accept integers for floats (never booleans or strings),
fill in defaults and give typed attribute access (``cfg.fit.weights.forces``).
:func:`parse` turns the first validation problem into an
:class:`~aceal.errors.AcealInputError` of one line naming the key path, e.g.
``fit.weights.forcess: unknown key`` or ``md.timestep: must be positive``.
:func:`settings_rows` lists a model's fields for the documentation tables, and a test
checks the tables against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from aceal.errors import AcealInputError

__all__ = ["Settings", "parse", "load_yaml", "yaml_loader", "settings_rows", "dump"]


class Settings(BaseModel):
    """Base of every config section: unknown keys are errors; ints pass for floats."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True,
                              populate_by_name=True, arbitrary_types_allowed=False)


_TYPE_NAMES = {"float": "a number", "int": "an integer", "bool": "a boolean",
               "string": "a string", "list": "a list", "dict": "a mapping",
               "model": "a mapping", "model_attributes": "a mapping", "tuple": "a list",
               "none": "null", "literal": "one of"}


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "config"


def _message(err: Mapping[str, Any]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind == "greater_than" and ctx.get("gt") == 0:
        return "must be positive"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge'):g}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le'):g}"
    if kind == "literal_error":
        options = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"must be one of {options}, got {value!r}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    base = kind.split("_")[0]
    if kind.endswith("_type") or kind.endswith("_parsing") or base in ("int", "float"):
        return f"expected {_TYPE_NAMES.get(base, base)}, got {value!r}"
    return f"{err['msg']}, got {value!r}"


def parse(model: type[Settings], doc: Any, context: dict | None = None,
          where: str = "") -> Settings:
    """Validate ``doc`` (parsed YAML) against ``model``; one-line AcealInputError on failure.

    ``context`` is handed to the validators (e.g. ``base_dir`` for relative paths);
    ``where`` prefixes the key path (e.g. a file name).  A validator that finds a problem
    in a key below the one it validates raises ``ValueError("@key: message")``.
    """
    try:
        return model.model_validate({} if doc is None else doc, context=context or {})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = _path(tuple(err["loc"]))
        msg = " ".join(_message(err).split())
        if msg.startswith("@"):  # a validator naming a key below its own: "@values: ..."
            sub, msg = msg[1:].split(": ", 1)
            path = sub if path == "config" else path + ("" if sub.startswith("[") else ".") + sub
        raise AcealInputError(f"{where}{path}: {msg}") from None


def dump(settings: Settings) -> dict:
    """The settings as plain YAML/JSON data, keys as written in a config file."""
    return settings.model_dump(mode="json", by_alias=True)


def yaml_loader():
    """Safe YAML loader that also reads ``1e4`` / ``1.0e5`` as floats (YAML 1.2 style;
    PyYAML's YAML 1.1 resolver wants ``1.0e+5`` and would return a string)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))
    return Loader


def load_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parse a YAML file; one-line AcealInputError if it is missing or not valid YAML."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise AcealInputError(f"{p}: {what} not found") from None
    except OSError as err:
        raise AcealInputError(f"{p}: cannot read ({err.strerror})") from err
    try:
        return yaml.load(text, Loader=yaml_loader())  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as err:
        msg = " ".join(str(err).split())
        raise AcealInputError(f"{p}: invalid YAML ({msg})") from err


def settings_rows(model: type[Settings], prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """``(key path, default, description)`` of every leaf field, sections expanded."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        ann = field.annotation
        args = [a for a in get_args(ann) if a is not type(None)]
        item = args[0] if get_origin(ann) is list and args else ann   # list[Section]
        if isinstance(item, type) and issubclass(item, Settings):
            yield from settings_rows(item, key + ".")
        else:
            default = field.get_default(call_default_factory=True)
            if isinstance(default, Settings):
                default = dump(default)
            yield key, default, field.description or ""

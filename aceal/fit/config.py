"""The ``aceal fit`` configuration: schema, defaults and validation.

The schema is a small tree of nodes; :func:`validate_config` walks a parsed YAML document
against it, fills in defaults and raises :class:`~aceal.errors.AcealInputError` naming the
key path of the first problem (``fit.weights.forcess: unknown key``).  The documented
schema lives in ``docs/fitting.md``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aceal.errors import AcealInputError

__all__ = ["load_config", "validate_config", "SCHEMA", "basis_parameter_names"]

_REQUIRED = object()


def _type_name(t: tuple[type, ...]) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             type(None): "null", list: "a list", dict: "a mapping"}
    return " or ".join(names.get(x, x.__name__) for x in t)


@dataclass
class Value:
    """A leaf: one of ``types`` (``int`` is accepted for ``float``), optional choices/check."""

    types: tuple[type, ...]
    default: Any = None
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None

    def validate(self, value: Any, path: str) -> Any:
        types = self.types
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise AcealInputError(f"{path}: expected {_type_name(types)}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise AcealInputError(f"{path}: must be one of {', '.join(map(str, self.choices))}, "
                                  f"got {value!r}")
        if self.check is not None and value is not None:
            msg = self.check(value)
            if msg:
                raise AcealInputError(f"{path}: {msg}")
        return value


@dataclass
class Section:
    """A mapping with fixed keys; unknown keys are errors."""

    fields: dict[str, Any]
    nullable: bool = False
    default_none: bool = False

    @property
    def default(self) -> Any:
        if self.default_none:
            return None
        return {k: _default(v) for k, v in self.fields.items()
                if _default(v) is not _REQUIRED}

    def validate(self, value: Any, path: str) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, dict):
            raise AcealInputError(f"{path or 'config'}: expected a mapping, got {value!r}")
        out = {}
        for key in value:
            if not isinstance(key, str) or key not in self.fields:
                raise AcealInputError(f"{_join(path, key)}: unknown key")
        for key, node in self.fields.items():
            if key in value:
                out[key] = node.validate(value[key], _join(path, key))
            else:
                d = _default(node)
                if d is _REQUIRED:
                    raise AcealInputError(f"{_join(path, key)}: required key missing")
                out[key] = copy.deepcopy(d)
        return out


@dataclass
class MapOf:
    """A mapping with free (string) keys and values of one schema."""

    value: Any
    default: Any = field(default_factory=dict)

    def validate(self, value: Any, path: str) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise AcealInputError(f"{path}: expected a mapping, got {value!r}")
        out = {}
        for k, v in value.items():
            out[str(k)] = self.value.validate(v, _join(path, str(k)))
        return out


@dataclass
class OneOf:
    """The first alternative that validates (error message of the last one otherwise)."""

    options: tuple
    default: Any = None
    describe: str = ""

    def validate(self, value: Any, path: str) -> Any:
        err: AcealInputError | None = None
        for opt in self.options:
            try:
                return opt.validate(value, path)
            except AcealInputError as e:
                err = e
        if self.describe:
            raise AcealInputError(f"{path}: expected {self.describe}, got {value!r}")
        assert err is not None
        raise err


@dataclass
class PathList:
    """A path or a list of paths (strings)."""

    default: Any = None
    nullable: bool = True

    def validate(self, value: Any, path: str) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
        raise AcealInputError(f"{path}: expected a path or a list of paths, got {value!r}")


@dataclass
class FreeMapping:
    """Keyword arguments passed through to a constructor; keys checked against ``names()``."""

    names: Callable[[], set[str] | None]
    default: Any = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()

    def validate(self, value: Any, path: str) -> Any:
        if value is None:
            return copy.deepcopy(self.default)
        if not isinstance(value, dict):
            raise AcealInputError(f"{path}: expected a mapping, got {value!r}")
        allowed = self.names()
        out = {}
        for key, v in value.items():
            p = _join(path, str(key))
            if key in self.forbidden:
                raise AcealInputError(f"{p}: set automatically, remove it")
            if key in self.fixed:
                out[key] = self.fixed[key].validate(v, p)
            elif allowed is not None and key not in allowed:
                raise AcealInputError(f"{p}: unknown key")
            else:
                out[key] = v
        for key, node in self.fixed.items():
            if key not in out and node.default is not None:
                out[key] = copy.deepcopy(node.default)
        return out


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _default(node: Any) -> Any:
    d = node.default
    return d() if callable(d) and not isinstance(d, type) else d


def _positive(x: float) -> str | None:
    return None if x > 0 else "must be positive"


def _non_negative(x: float) -> str | None:
    return None if x >= 0 else "must be >= 0"


def basis_parameter_names() -> set[str] | None:
    """Keyword arguments of :class:`aceal.basis.ACEBasis` (``None`` if it is not available)."""
    try:
        from aceal.basis import ACEBasis
    except ImportError:
        return None
    params = inspect.signature(ACEBasis).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n in params if n != "self"}


_NUM = (float,)
_WEIGHT = Value(_NUM, None, check=_non_negative)

SCHEMA = Section({
    "data": Section({
        "train": PathList(),
        "test": PathList(),
        "keys": Section({
            "energy": Value((str,), "energy"),
            "forces": Value((str,), "forces"),
            "stress": Value((str,), "stress"),
            "config_type": Value((str,), "config_type"),
            "weight": Value((str,), "weight"),
        }),
    }),
    "basis": FreeMapping(
        basis_parameter_names,
        fixed={
            "r_cut": OneOf((Value(_NUM, check=_positive),
                            Section({"nn_multiple": Value(_NUM, _REQUIRED, check=_positive)})),
                           default=None,
                           describe="a cutoff in Å or {nn_multiple: x}"),
        },
        forbidden=("elements",),
    ),
    "e0": Section({
        "method": Value((str,), "fit",
                        choices=("fit", "composition", "given", "isolated")),
        "values": MapOf(Value(_NUM)),
    }),
    "repulsion": Section({
        "prehc": Value(_NUM, _REQUIRED, check=_non_negative),
        "lambdahc": Value(_NUM, _REQUIRED, check=_non_negative),
    }, nullable=True, default_none=True),
    "fit": Section({
        "weights": Section({
            "energy": Value(_NUM, 1.0e4, check=_non_negative),
            "forces": Value(_NUM, 1.0e2, check=_non_negative),
            "virial": Value(_NUM, 1.0e3, check=_non_negative),
            "config_types": MapOf(Section({"energy": _WEIGHT, "forces": _WEIGHT,
                                           "virial": _WEIGHT})),
        }),
        "solver": Section({
            "method": Value((str,), "bayesian", choices=("bayesian", "ridge")),
            "lambda": Value(_NUM, 1e-8, check=_non_negative),
            "max_iter": Value((int,), 1000, check=_positive),
        }),
        "prior": Section({
            "power": Value(_NUM, 2.0, check=_non_negative),
            "offset": Value(_NUM, 1.0, check=_positive),
            "order_factor": Value(_NUM, 1.0, check=_positive),
        }),
        "committee": Section({
            "size": Value((int,), 0, check=_non_negative),
            "seed": Value((int,), 0),
        }),
        "chunk_size": Value((int,), 32, check=_positive),
    }),
    "output": Section({
        "model": Value((str,), "model.yaml"),
        "report": Value((str, type(None)), None),
        "plot": Value((bool,), True),
        "normal_equations": Value((str, type(None)), None),
    }),
})


def validate_config(doc: Any) -> dict:
    """Validate a parsed configuration and return it with all defaults filled in."""
    if doc is None:
        doc = {}
    out = SCHEMA.validate(doc, "")
    # strip the internal null for an unset r_cut
    if out["basis"].get("r_cut") is None:
        out["basis"].pop("r_cut", None)
    if out["e0"]["method"] == "given" and not out["e0"]["values"]:
        raise AcealInputError("e0.values: required when e0.method is given")
    return out


def _yaml_loader():
    """A safe YAML loader that also reads ``1e4`` / ``1.0e5`` as floats (YAML 1.2 style;
    PyYAML's YAML 1.1 resolver wants ``1.0e+5`` and would return a string)."""
    import re

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


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML configuration file."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise AcealInputError(f"{p}: cannot read ({err.strerror})") from err
    try:
        doc = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as err:
        msg = " ".join(str(err).split())
        raise AcealInputError(f"{p}: invalid YAML ({msg})") from err
    return validate_config(doc)

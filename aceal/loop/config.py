"""The ``aceal-loop`` campaign configuration: schema, defaults and validation.

The schema reuses the node types of :mod:`aceal.fit.config` (``Value``, ``Section``,
``MapOf``, ...), so errors look the same as for ``aceal fit``: the key path of the first
problem and what was wrong (``md.timestep: must be positive``).  Everything is checked
before anything runs: unknown keys, wrong types, files that do not exist, elements that
are not chemical elements or not listed in ``elements``, and the reference-calculator
spec (built once).  The fields are documented in ``docs/campaign.md``.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

from ase.data import atomic_numbers

from aceal.errors import AcealInputError
from aceal.fit.config import (
    _REQUIRED,
    FreeMapping,
    OneOf,
    PathList,
    Section,
    Value,
)
from aceal.fit.config import (
    SCHEMA as FIT_SCHEMA,
)

__all__ = ["SCHEMA", "load_campaign_config", "validate_campaign_config", "quickstart_path"]

_NUM = (float,)


def _positive(x: float) -> str | None:
    return None if x > 0 else "must be positive"


def _non_negative(x: float) -> str | None:
    return None if x >= 0 else "must be >= 0"


def _pair(x: list) -> str | None:
    if len(x) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in x):
        return "expected [collect, stop], two numbers"
    if not 0 <= x[0] <= x[1]:
        return "expected 0 <= collect <= stop"
    return None


def _int3(x: list) -> str | None:
    if len(x) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                              for v in x):
        return "expected three positive integers"
    return None


def _miller(x: list) -> str | None:
    if len(x) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        return "expected three integers"
    return None


def _temperatures(x: Any) -> str | None:
    vals = x if isinstance(x, list) else [x]
    if not vals or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                           for v in vals):
        return "expected a temperature (K) or a non-empty list of positive temperatures"
    return None


_THRESH = Value((list, type(None)), None, check=_pair)

STRUCTURE = Section({
    "builder": Value((str,), "bulk", choices=("bulk", "file")),
    "file": Value((str, type(None)), None),
    "index": Value((str, int), -1),
    "element": Value((str, type(None)), None),
    "crystal": Value((str,), "fcc", choices=("fcc", "bcc", "hcp", "diamond", "sc")),
    "a": Value((float, type(None)), None, check=_positive),
    "cubic": Value((bool,), True),
    "repeat": Value((list,), [1, 1, 1], check=_int3),
    "surface": Section({
        "miller": Value((list,), _REQUIRED, check=_miller),
        "layers": Value((int,), 4, check=_positive),
        "vacuum": Value(_NUM, 8.0, check=_positive),
    }, nullable=True, default_none=True),
    "vacancies": Value((int,), 0, check=_non_negative),
    "interstitials": Value((int,), 0, check=_non_negative),
    "rattle": Value(_NUM, 0.0, check=_non_negative),
    "strain": Value(_NUM, 0.0, check=_non_negative),
    "config_type": Value((str, type(None)), None),
})


class ListOf:
    """A non-empty list whose items follow one schema."""

    def __init__(self, item: Any, default: Any = _REQUIRED, allow_empty: bool = False) -> None:
        self.item = item
        self.default = default
        self.allow_empty = allow_empty

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, list) or (not value and not self.allow_empty):
            raise AcealInputError(f"{path}: expected a non-empty list, got {value!r}")
        return [self.item.validate(v, f"{path}[{i}]") for i, v in enumerate(value)]


class CalculatorSpec:
    """A calculator spec for :func:`aceal.reference.make_calculator` (string or mapping)."""

    def __init__(self, default: Any = _REQUIRED) -> None:
        self.default = default

    def validate(self, value: Any, path: str) -> Any:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, dict) and ("name" in value or "class" in value):
            return dict(value)
        raise AcealInputError(f"{path}: expected a calculator name (e.g. EMT) or a mapping "
                              f"with 'name' or 'class', got {value!r}")


_FIT = FIT_SCHEMA.fields

SCHEMA = Section({
    "elements": ListOf(Value((str,))),
    "structures": ListOf(STRUCTURE),
    "initial_data": Section({
        "store": Value((str, type(None)), None),
        "xyz": PathList(),
        "seeds_per_structure": Value((int,), 4, check=_non_negative),
        "seed_rattle": Value(_NUM, 0.05, check=_non_negative),
        "seed_strain": Value(_NUM, 0.02, check=_non_negative),
    }),
    "basis": FreeMapping(_FIT["basis"].names, fixed=_FIT["basis"].fixed,
                         forbidden=("elements",)),
    "e0": Section({
        "method": Value((str,), "fit", choices=("fit", "given")),
        "values": _FIT["e0"].fields["values"],
    }),
    "repulsion": _FIT["repulsion"],
    "fit": Section({
        "weights": _FIT["fit"].fields["weights"],
        "solver": _FIT["fit"].fields["solver"],
        "prior": _FIT["fit"].fields["prior"],
        "committee": Value((int,), 8, check=lambda k: None if k >= 2 else "must be >= 2"),
        "chunk_size": Value((int,), 16, check=_positive),
    }),
    "reference": Section({
        "calculator": CalculatorSpec(),
        "timeout": Value(_NUM, 600.0, check=_positive),
        "retries": Value((int,), 1, check=_non_negative),
        "max_force": Value(_NUM, 50.0, check=_positive),
        "stress": Value((bool,), True),
        "isolation": Value((str,), "none", choices=("none", "process")),
    }),
    "md": Section({
        "walkers": Value((int,), 2, check=_positive),
        "ensemble": Value((str,), "nvt", choices=("nvt", "npt")),
        "temperature": OneOf((Value(_NUM, check=_positive),
                              Value((list,), check=_temperatures)),
                             default=300.0, describe="a temperature (K) or a list of them"),
        "timestep": Value(_NUM, 2.0, check=_positive),
        "friction": Value(_NUM, 0.02, check=_positive),
        "steps_per_segment": Value((int,), 200, check=_positive),
        "sample_interval": Value((int,), 10, check=_positive),
        "pressure": Value(_NUM, 0.0),
        "taup": Value(_NUM, 500.0, check=_positive),
        "min_distance": Value(_NUM, 1.5, check=_positive),
        "keep_last": Value((int,), 2, check=_non_negative),
    }),
    "uncertainty": Section({
        "force_std": Value((list, type(None)), [0.05, 0.5], check=_pair),
        "energy_std": _THRESH,
        "gamma": Value((list, type(None)), [5.0, 25.0], check=_pair),
        "rare_events": Section({
            "enabled": Value((bool,), True),
            "hop_fraction": Value(_NUM, 0.35, check=_positive),
            "kinds": Value((list,), ["hop", "coordination"]),
        }),
    }),
    "selection": Section({
        "method": Value((str,), "fps",
                        choices=("fps", "d-optimal", "entropy", "information")),
        "batch_size": Value((int,), 8, check=_positive),
        "rare_event_priority": Value((bool,), True),
        "priority_share": Value(_NUM, 0.5, check=lambda x: None if 0 <= x <= 1
                                else "must be between 0 and 1"),
    }),
    "validation": Section({
        "file": Value((str, type(None)), None),
        "frames": Value((int,), 8, check=_non_negative),
        "temperature": Value(_NUM, 1000.0, check=_positive),
        "steps_between": Value((int,), 50, check=_positive),
        "timestep": Value(_NUM, 2.0, check=_positive),
    }),
    "stopping": Section({
        "max_iterations": Value((int,), 10, check=_positive),
        "max_reference_calls": Value((int, type(None)), None, check=_positive),
        "max_wall_time": Value((float, type(None)), None, check=_positive),
        "force_mae": Value((float, type(None)), None, check=_positive),
        "patience": Value((int, type(None)), None, check=_positive),
        "rtol": Value(_NUM, 0.05, check=_non_negative),
    }),
    "output": Section({
        "directory": Value((str,), "aceal-campaign"),
        "store": Value((str,), "train.zarr"),
        "log": Value((str,), "log.jsonl"),
        "plots": Value((bool,), True),
        "progress": Value((bool,), True),
    }),
    "parallel": Section({
        "timeout": Value(_NUM, 3600.0, check=_positive),
        "worker_timeout": Value(_NUM, 86400.0, check=_positive),
    }),
    "seed": Value((int,), 0),
    "threads_per_rank": Value((int, type(None)), None, check=_positive),
})


def _check_element(symbol: str, path: str, allowed: list[str] | None = None) -> None:
    if symbol not in atomic_numbers or symbol == "X":
        raise AcealInputError(f"{path}: unknown element {symbol!r}")
    if allowed is not None and symbol not in allowed:
        raise AcealInputError(f"{path}: element {symbol!r} is not in elements "
                              f"({', '.join(allowed)})")


def _resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _check_file(value: str, path: str, base: Path, directory_ok: bool = False) -> str:
    p = _resolve(value, base)
    if not (p.is_file() or (directory_ok and p.is_dir())):
        raise AcealInputError(f"{path}: file not found: {p}")
    return str(p)


def validate_campaign_config(doc: Any, base_dir: str | Path = ".",
                             check_calculator: bool = True) -> dict:
    """Validate a parsed campaign config and return it with defaults filled in.

    Parameters
    ----------
    doc
        The parsed YAML document.
    base_dir
        Directory that relative *input* paths (structure files, initial data, potential
        files, validation file) are resolved against: the config file's directory.
        Input paths in the returned dict are absolute.
    check_calculator
        Build the reference calculator once to check its spec (files, packages).

    Raises
    ------
    AcealInputError
        Naming the key path of the first problem.
    """
    base = Path(base_dir).resolve()
    if doc is None:
        doc = {}
    cfg = SCHEMA.validate(doc, "")
    cfg["base_dir"] = str(base)
    if cfg["basis"].get("r_cut") is None:
        cfg["basis"].pop("r_cut", None)
    elements = cfg["elements"]
    for i, el in enumerate(elements):
        _check_element(el, f"elements[{i}]")
    if len(set(elements)) != len(elements):
        raise AcealInputError("elements: repeated element")
    for i, s in enumerate(cfg["structures"]):
        p = f"structures[{i}]"
        if s["builder"] == "file":
            if not s["file"]:
                raise AcealInputError(f"{p}.file: required when builder is file")
            s["file"] = _check_file(s["file"], f"{p}.file", base)
        else:
            if not s["element"]:
                raise AcealInputError(f"{p}.element: required when builder is bulk")
            _check_element(s["element"], f"{p}.element", elements)
            if s["file"]:
                raise AcealInputError(f"{p}.file: only for builder file")
    init = cfg["initial_data"]
    if init["store"]:
        init["store"] = _check_file(init["store"], "initial_data.store", base, directory_ok=True)
    if init["xyz"]:
        init["xyz"] = [_check_file(x, f"initial_data.xyz[{i}]", base)
                       for i, x in enumerate(init["xyz"])]
    if cfg["e0"]["method"] == "given":
        if not cfg["e0"]["values"]:
            raise AcealInputError("e0.values: required when e0.method is given")
        for el in cfg["e0"]["values"]:
            _check_element(el, f"e0.values.{el}", elements)
        missing = [el for el in elements if el not in cfg["e0"]["values"]]
        if missing:
            raise AcealInputError(f"e0.values: missing {', '.join(missing)}")
    if cfg["validation"]["file"]:
        cfg["validation"]["file"] = _check_file(cfg["validation"]["file"], "validation.file",
                                                base)
    kinds = cfg["uncertainty"]["rare_events"]["kinds"]
    for i, k in enumerate(kinds):
        if k not in ("hop", "coordination", "bond_break", "bond_form"):
            raise AcealInputError(f"uncertainty.rare_events.kinds[{i}]: unknown kind {k!r} "
                                  "(hop, coordination, bond_break, bond_form)")
    unc = cfg["uncertainty"]
    if all(unc[k] is None for k in ("force_std", "energy_std", "gamma")):
        raise AcealInputError("uncertainty: give at least one of force_std, energy_std, gamma")
    md = cfg["md"]
    if md["sample_interval"] > md["steps_per_segment"]:
        raise AcealInputError("md.sample_interval: larger than md.steps_per_segment")
    temps = md["temperature"]
    md["temperature"] = [float(t) for t in (temps if isinstance(temps, list) else [temps])]
    if cfg["initial_data"]["seeds_per_structure"] == 0 and not (init["store"] or init["xyz"]):
        raise AcealInputError("initial_data: no initial data (seeds_per_structure is 0 and "
                              "no store or xyz given)")
    if check_calculator:
        from aceal.reference import make_calculator

        try:
            make_calculator(cfg["reference"]["calculator"], base)
        except AcealInputError as err:
            raise AcealInputError(f"reference.calculator: {err}") from None
    return cfg


def load_campaign_config(path: str | Path | None = None, check_calculator: bool = True) -> dict:
    """Read and validate a campaign YAML file (``None``: the embedded quickstart)."""
    import yaml

    p = quickstart_path() if path is None else Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise AcealInputError(f"{p}: config file not found") from None
    except OSError as err:
        raise AcealInputError(f"{p}: cannot read ({err.strerror})") from err
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        msg = " ".join(str(err).split())
        raise AcealInputError(f"{p}: invalid YAML ({msg})") from err
    cfg = validate_campaign_config(copy.deepcopy(doc), p.resolve().parent, check_calculator)
    cfg["config_path"] = str(p.resolve())
    return cfg


def quickstart_path() -> Path:
    """Path of the embedded ``aceal/data/quickstart.yaml``."""
    return Path(str(resources.files("aceal") / "data" / "quickstart.yaml"))

"""Reference calculators from short specifications.

One factory, :func:`make_calculator`, turns a small, serialisable *spec* into an ASE
calculator. The validation suite uses it for both the reference and (for tests) the
"model"; the active-learning loop uses it for the labelling calculator.

Spec forms
----------
``str``
    ``"EMT"``, ``"LJ"``, ``"SW"``, ``"Tersoff"``, ``"KumagaiSi"``, ``"tblite"``,
    ``"GPAW"``; or ``"NAME:ARG"`` where ARG is the one main argument:
    ``"EAM:path/to/file.eam.alloy"`` (potential file), ``"tblite:GFN1-xTB"`` (method),
    ``"SW:Holland_Marder_PRL_80_746_Si"`` (matscipy parameter set),
    ``"ACE:model.json"`` (an aceal model file). A string that starts with ``{`` is
    read as JSON and treated as a dict spec.
``dict`` with ``"name"``
    ``{"name": "EMT"}``;
    ``{"name": "LJ", "sigma": 2.3, "epsilon": 0.4, "rc": 6.0}`` (keys of
    :class:`ase.calculators.lj.LennardJones`);
    ``{"name": "EAM", "potential": "Cu_mishin1.eam.alloy", "backend": "auto"}`` --
    a DYNAMO setfl/funcfl file; ``backend`` is ``"ase"``
    (:class:`ase.calculators.eam.EAM`), ``"matscipy"``
    (:class:`matscipy.calculators.eam.EAM`, same energies to 1e-10 eV and ~20x
    faster) or ``"auto"`` (matscipy if installed, else ASE);
    ``{"name": "SW" | "Tersoff" | "KumagaiSi", "parameters": NAME_OR_DICT}`` --
    matscipy :class:`~matscipy.calculators.manybody.Manybody` with the
    Stillinger-Weber, Tersoff-Brenner or Kumagai explicit form; ``parameters`` is the
    name of a parameter set in the matching ``matscipy...explicit_forms`` module or a
    full parameter dict (defaults: ``Stillinger_Weber_PRB_31_5262_Si``,
    ``Tersoff_PRB_39_5566_Si_C``, ``Kumagai_Comp_Mat_Sci_39_Si``);
    ``{"name": "tblite", "method": "GFN1-xTB", ...}`` -- :class:`tblite.ase.TBLite`
    (xTB tight binding, Gamma point only: use supercells of >= 64 atoms for bulk);
    ``method`` is ``GFN1-xTB`` (default), ``GFN2-xTB`` or ``IPEA1-xTB``; the keywords
    of ``TBLite`` are checked by name and type (``accuracy``, ``electronic_temperature``
    in K, ``max_iterations``, ``verbosity`` (default 0: silent), ``guess``, ``mixer``,
    ...; ``initial_guess`` is an alias of ``guess``), plus ``threads``: OpenMP threads
    of the SCF (default: ``OMP_NUM_THREADS`` if set, else this thread's numba thread
    count, which ``aceal-loop`` sets to cores // ranks). A non-converged SCF raises
    :class:`ase.calculators.calculator.CalculationFailed`;
    ``{"name": "GPAW", ...}`` -- :class:`gpaw.GPAW`, all other keys passed on;
    ``{"name": "ACE", "model": "model.json"}`` -- :class:`aceal.calculator.ACECalculator`.
``dict`` with ``"class"``
    ``{"class": "dotted.module.Class", "kwargs": {...}}`` -- any ASE calculator.
    A string kwarg whose key is one of ``potential``, ``filename``, ``file``, ``path``,
    ``model``, ``model_path`` is resolved against ``base_dir`` when relative.

Relative file paths (``potential``, ``model``) resolve against ``base_dir`` (the
directory of the config file that held the spec) or, if ``None``, the current
directory. Unknown names or keys raise :class:`aceal.errors.AcealInputError` naming
the culprit; optional packages (matscipy, tblite, GPAW) are imported only when asked
for, with an error naming the ``pip install`` command if missing.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator

from aceal.errors import AcealInputError

__all__ = ["make_calculator", "normalise_spec", "describe_spec", "KNOWN_NAMES"]

#: matscipy many-body potentials: name -> (explicit-form function, module, default set)
_MANYBODY = {
    "sw": ("StillingerWeber", "stillinger_weber", "Stillinger_Weber_PRB_31_5262_Si"),
    "tersoff": ("TersoffBrenner", "tersoff_brenner", "Tersoff_PRB_39_5566_Si_C"),
    "kumagaisi": ("Kumagai", "kumagai", "Kumagai_Comp_Mat_Sci_39_Si"),
}

#: canonical spelling of each known name
KNOWN_NAMES = ("EMT", "LJ", "EAM", "SW", "Tersoff", "KumagaiSi", "tblite", "GPAW", "ACE")

#: for "NAME:ARG" strings: which dict key ARG fills
_STRING_ARG = {
    "eam": "potential",
    "sw": "parameters",
    "tersoff": "parameters",
    "kumagaisi": "parameters",
    "tblite": "method",
    "ace": "model",
}

_LJ_KEYS = {"sigma", "epsilon", "rc", "ro", "smooth"}

#: keywords of tblite.ase.TBLite (0.8) a spec may set, plus aceal's own ``threads``
_TBLITE_KEYS = {
    "method", "charge", "multiplicity", "accuracy", "electronic_temperature",
    "max_iterations", "mixer", "mixer_memory", "mixer_damping", "guess", "initial_guess",
    "annealing", "electric_field", "spin_polarization", "solvation", "cache_api",
    "verbosity", "xtb_config", "threads",
}
_TBLITE_METHODS = ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB")
_PATH_KWARGS = {"potential", "filename", "file", "path", "model", "model_path"}


def _canonical(name: str) -> str:
    low = name.strip().lower()
    for known in KNOWN_NAMES:
        if known.lower() == low:
            return known
    raise AcealInputError(
        f"unknown calculator name {name!r}; known: {', '.join(KNOWN_NAMES)} "
        "(or give {'class': 'module.Class', 'kwargs': {...}})"
    )


def normalise_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """Return the dict form of a spec (strings parsed, name spelt canonically).

    Parameters
    ----------
    spec
        A string (``"EMT"``, ``"EAM:file"``, JSON text) or a dict spec.

    Returns
    -------
    dict
        A new dict with either a ``"name"`` or a ``"class"`` key.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise AcealInputError("empty calculator spec")
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as err:
                raise AcealInputError(f"calculator spec is not valid JSON: {err}") from None
            return normalise_spec(loaded)
        name, sep, arg = text.partition(":")
        canon = _canonical(name)
        out: dict[str, Any] = {"name": canon}
        if sep:
            key = _STRING_ARG.get(canon.lower())
            if key is None:
                raise AcealInputError(f"calculator spec {spec!r}: {canon} takes no ':' argument")
            if not arg:
                raise AcealInputError(f"calculator spec {spec!r}: empty {key} after ':'")
            out[key] = arg
        return out
    if not isinstance(spec, Mapping):
        raise AcealInputError(
            f"calculator spec must be a string or a dict, not {type(spec).__name__}"
        )
    out = dict(spec)
    if "class" in out:
        extra = set(out) - {"class", "kwargs"}
        if extra:
            raise AcealInputError(
                f"calculator spec: unknown key {sorted(extra)[0]!r} next to 'class'"
            )
        return out
    if "name" not in out:
        raise AcealInputError("calculator spec needs a 'name' or a 'class' key")
    out["name"] = _canonical(str(out["name"]))
    return out


def describe_spec(spec: str | Mapping[str, Any]) -> str:
    """Short human-readable label for a spec, e.g. ``"EAM(Cu_mishin1.eam.alloy)"``."""
    d = normalise_spec(spec)
    if "class" in d:
        return str(d["class"]).rsplit(".", 1)[-1]
    name = d["name"]
    arg = {k: v for k, v in d.items() if k != "name"}
    for key in ("potential", "model"):
        if key in arg:
            return f"{name}({Path(str(arg[key])).name})"
    if "parameters" in arg and isinstance(arg["parameters"], str):
        return f"{name}({arg['parameters']})"
    if "method" in arg:
        return f"{name}({arg['method']})"
    return name


def _resolve(path: str | Path, base_dir: str | Path | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _existing_file(path: str | Path, base_dir: str | Path | None, what: str) -> Path:
    p = _resolve(path, base_dir)
    if not p.is_file():
        raise AcealInputError(f"{what} file not found: {p}")
    return p


def _import_optional(module: str, pip_name: str, what: str):
    try:
        # builtins.__import__ (not importlib.import_module) so import hooks apply
        __import__(module)
        return sys.modules[module]
    except ImportError:
        raise AcealInputError(
            f"calculator {what!r} needs the {pip_name!r} package: pip install {pip_name}"
        ) from None


def _check_keys(d: Mapping[str, Any], allowed: set[str], name: str) -> None:
    for key in d:
        if key != "name" and key not in allowed:
            raise AcealInputError(
                f"calculator spec for {name}: unknown key {key!r}"
                + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else " (takes no keys)")
            )


def _setfl_symbols(path: Path) -> list[str] | None:
    """Element symbols from line 4 of a DYNAMO setfl (eam/alloy) file, else None."""
    try:
        with open(path) as fh:
            lines = [fh.readline() for _ in range(4)]
        fields = lines[3].split()
        n = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    return fields[1 : 1 + n] if len(fields) >= 1 + n else None


def _fix_matscipy_eam_numbers(calc, path: Path) -> bool:
    """Make matscipy's EAM map atoms by element symbol, as ASE's EAM does.

    matscipy indexes species by the atomic number written in the file, which some
    distributed files get wrong (e.g. Zhou W writes Z = 1). Returns False if the
    numbers disagree and cannot be corrected (the caller then falls back to ASE).
    """
    from ase.data import atomic_numbers

    symbols = _setfl_symbols(path)
    if symbols is None or not path.name.endswith(("alloy", "setfl")):
        return True
    try:
        z = np.array([atomic_numbers[s] for s in symbols])
    except KeyError:
        return False
    db = getattr(calc, "_db_atomic_numbers", None)
    if db is None or len(db) != len(z):
        return False
    if np.array_equal(np.asarray(db), z):
        return True
    if not hasattr(calc, "atnum_to_index"):
        return False
    calc._db_atomic_numbers = z
    calc.atnum_to_index = -np.ones(int(z.max()) + 1, dtype=int)
    calc.atnum_to_index[z] = np.arange(len(z))
    return True


def _make_eam(d: Mapping[str, Any], base_dir) -> Calculator:
    _check_keys(d, {"potential", "backend"}, "EAM")
    if "potential" not in d:
        raise AcealInputError(
            "calculator spec for EAM: missing key 'potential' (a .eam.alloy file)"
        )
    path = _existing_file(d["potential"], base_dir, "EAM potential")
    backend = str(d.get("backend", "auto")).lower()
    if backend not in ("auto", "ase", "matscipy"):
        raise AcealInputError(
            f"calculator spec for EAM: backend must be auto, ase or matscipy, not {backend!r}"
        )
    if backend in ("auto", "matscipy"):
        try:
            from matscipy.calculators.eam import EAM as MatscipyEAM
        except ImportError:
            if backend == "matscipy":
                raise AcealInputError(
                    "EAM backend 'matscipy' needs the 'matscipy' package: pip install matscipy"
                ) from None
        else:
            calc = MatscipyEAM(str(path))
            if _fix_matscipy_eam_numbers(calc, path):
                return calc
            if backend == "matscipy":
                raise AcealInputError(
                    f"EAM file {path}: atomic numbers do not match the element symbols; "
                    "use backend 'ase'"
                )
    from ase.calculators.eam import EAM

    return EAM(potential=str(path))


def _make_manybody(d: Mapping[str, Any], key: str) -> Calculator:
    func_name, module_name, default = _MANYBODY[key]
    _check_keys(d, {"parameters"}, d["name"])
    _import_optional("matscipy", "matscipy", d["name"])
    from matscipy.calculators.manybody import Manybody

    forms = importlib.import_module(f"matscipy.calculators.manybody.explicit_forms.{module_name}")
    params = d.get("parameters", default)
    if isinstance(params, str):
        if not hasattr(forms, params) or not isinstance(getattr(forms, params), dict):
            known = sorted(
                n for n, v in vars(forms).items() if isinstance(v, dict) and "__ref__" in v
            )
            raise AcealInputError(
                f"calculator spec for {d['name']}: unknown parameter set {params!r} "
                f"(known: {', '.join(known)})"
            )
        params = getattr(forms, params)
    elif not isinstance(params, Mapping):
        raise AcealInputError(
            f"calculator spec for {d['name']}: 'parameters' must be a name or a dict"
        )
    form = getattr(forms, func_name)
    return Manybody(**form(dict(params)))


def _number(d: Mapping[str, Any], key: str, name: str, *, integer: bool = False,
            minimum: float = 0.0, strict: bool = True) -> None:
    """Check that ``d[key]`` (if present) is a number (an int) above/at ``minimum``."""
    if key not in d:
        return
    v = d[key]
    ok_type = (isinstance(v, int) if integer else isinstance(v, int | float))
    if isinstance(v, bool) or not ok_type or not np.isfinite(v):
        kind = "an integer" if integer else "a number"
        raise AcealInputError(f"calculator spec for {name}: {key!r} must be {kind}, not {v!r}")
    if v < minimum or (strict and v == minimum):
        rel = ">" if strict else ">="
        raise AcealInputError(
            f"calculator spec for {name}: {key!r} must be {rel} {minimum:g}, not {v!r}"
        )


_TBLITE_CLASS = None


def _tblite_class(mod):
    """A subclass of ``tblite.ase.TBLite`` that runs the SCF on a set number of threads.

    OpenMP's thread count is a per-thread setting of the runtime, read when a parallel
    region starts, so it is set around every calculation (and restored afterwards) with
    ``threadpoolctl``, which finds whichever OpenMP runtime tblite loaded (libgomp,
    libomp or libiomp).
    """
    global _TBLITE_CLASS
    if _TBLITE_CLASS is None:
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()  # after importing tblite: sees its runtime

        class TBLiteThreads(mod.TBLite):
            """``tblite.ase.TBLite`` with ``threads`` OpenMP threads (None: unchanged)."""

            def __init__(self, *args, threads: int | None = None, **kwargs):
                self.threads = threads
                super().__init__(*args, **kwargs)

            def calculate(self, *args, **kwargs):
                if self.threads is None:
                    return super().calculate(*args, **kwargs)
                with controller.limit(limits=int(self.threads), user_api="openmp"):
                    return super().calculate(*args, **kwargs)

        _TBLITE_CLASS = TBLiteThreads
    return _TBLITE_CLASS


def _make_tblite(d: Mapping[str, Any]) -> Calculator:
    _check_keys(d, _TBLITE_KEYS, "tblite")
    mod = _import_optional("tblite.ase", "tblite", d["name"])
    kwargs = {k: v for k, v in d.items() if k != "name"}
    if "initial_guess" in kwargs:
        if "guess" in kwargs:
            raise AcealInputError(
                "calculator spec for tblite: give 'guess' or its alias 'initial_guess', not both"
            )
        kwargs["guess"] = kwargs.pop("initial_guess")  # TBLite documents it, reads 'guess'
    method = kwargs.get("method", "GFN1-xTB")
    if isinstance(method, str):
        canon = {m.lower(): m for m in _TBLITE_METHODS}.get(method.strip().lower())
        if canon is None:
            raise AcealInputError(
                f"calculator spec for tblite: unknown method {method!r} "
                f"(known: {', '.join(_TBLITE_METHODS)})"
            )
        kwargs["method"] = canon
    elif not isinstance(method, Mapping):  # a dict is a full parametrisation
        raise AcealInputError(
            f"calculator spec for tblite: 'method' must be a name or a dict, not {method!r}"
        )
    _number(kwargs, "accuracy", "tblite")
    _number(kwargs, "electronic_temperature", "tblite", strict=False)
    _number(kwargs, "max_iterations", "tblite", integer=True)
    _number(kwargs, "mixer_memory", "tblite", integer=True, strict=False)
    _number(kwargs, "mixer_damping", "tblite")
    _number(kwargs, "verbosity", "tblite", integer=True, strict=False)
    if kwargs.get("threads") is not None:
        _number(kwargs, "threads", "tblite", integer=True)
    guess = kwargs.get("guess", "sad")
    if guess not in ("sad", "eeq", "eeqbc"):
        raise AcealInputError(
            f"calculator spec for tblite: 'guess' must be sad, eeq or eeqbc, not {guess!r}"
        )
    kwargs.setdefault("verbosity", 0)  # tblite prints every SCF cycle at 1
    threads = kwargs.pop("threads", None)
    if threads is None and not os.environ.get("OMP_NUM_THREADS"):
        import numba

        threads = numba.get_num_threads()
    return _tblite_class(mod)(threads=threads, **kwargs)


def _make_from_class(d: Mapping[str, Any], base_dir) -> Calculator:
    dotted = str(d["class"])
    module_name, _, cls_name = dotted.rpartition(".")
    if not module_name:
        raise AcealInputError(f"calculator spec: 'class' must be a dotted path, got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise AcealInputError(
            f"calculator spec: cannot import module {module_name!r}: {err}"
        ) from None
    if not hasattr(module, cls_name):
        raise AcealInputError(f"calculator spec: module {module_name!r} has no {cls_name!r}")
    kwargs = d.get("kwargs", {}) or {}
    if not isinstance(kwargs, Mapping):
        raise AcealInputError("calculator spec: 'kwargs' must be a dict")
    kwargs = dict(kwargs)
    for key in _PATH_KWARGS & set(kwargs):
        if isinstance(kwargs[key], str):
            kwargs[key] = str(_resolve(kwargs[key], base_dir))
    try:
        return getattr(module, cls_name)(**kwargs)
    except TypeError as err:
        raise AcealInputError(f"calculator spec: {dotted}(**kwargs) failed: {err}") from None


def make_calculator(
    spec: str | Mapping[str, Any], base_dir: str | Path | None = None
) -> Calculator:
    """Build an ASE calculator from a spec (see the module docstring for the forms).

    Parameters
    ----------
    spec
        ``"EMT"``, ``"EAM:file.eam.alloy"``, ``{"name": "EAM", "potential": ...}``,
        ``{"class": "ase.calculators.emt.EMT", "kwargs": {}}``, ...
    base_dir
        Directory against which relative file paths in the spec are resolved
        (default: the current directory).

    Returns
    -------
    ase.calculators.calculator.Calculator
        A fresh calculator instance (never shared between calls).

    Raises
    ------
    AcealInputError
        Unknown name or key, missing file, or a missing optional package.
    """
    d = normalise_spec(spec)
    if "class" in d:
        return _make_from_class(d, base_dir)
    name = d["name"]
    key = name.lower()
    if key == "emt":
        _check_keys(d, set(), name)
        from ase.calculators.emt import EMT

        return EMT()
    if key == "lj":
        _check_keys(d, _LJ_KEYS, name)
        from ase.calculators.lj import LennardJones

        return LennardJones(
            **{k: float(v) if k != "smooth" else bool(v) for k, v in d.items() if k != "name"}
        )
    if key == "eam":
        return _make_eam(d, base_dir)
    if key in _MANYBODY:
        return _make_manybody(d, key)
    if key == "tblite":
        return _make_tblite(d)
    if key == "gpaw":
        mod = _import_optional("gpaw", "gpaw", name)
        return mod.GPAW(**{k: v for k, v in d.items() if k != "name"})
    if key == "ace":
        _check_keys(d, {"model"}, name)
        if "model" not in d:
            raise AcealInputError("calculator spec for ACE: missing key 'model' (a model file)")
        path = _existing_file(d["model"], base_dir, "ACE model")
        try:
            from aceal.calculator import ACECalculator
        except ImportError as err:
            raise AcealInputError(
                f"ACE calculator not available in this aceal build: {err}"
            ) from None
        return ACECalculator(str(path))
    raise AcealInputError(f"unknown calculator name {name!r}")  # pragma: no cover

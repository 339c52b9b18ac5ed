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
from typing import Any, Literal

import numpy as np
from ase.calculators.calculator import Calculator
from pydantic import ConfigDict, Field, model_validator

from aceal.errors import AcealInputError
from aceal.settings import Settings, parse

__all__ = ["make_calculator", "check_spec", "normalise_spec", "describe_spec", "KNOWN_NAMES",
           "SPEC_MODELS"]

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

_TBLITE_METHODS = ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB")
_PATH_KWARGS = {"potential", "filename", "file", "path", "model", "model_path"}


# ---------------------------------------------------------------------- typed specs
class _Spec(Settings):
    """A ``{"name": ...}`` spec; unknown keys are errors."""

    name: str


class EMTSpec(_Spec):
    """:class:`ase.calculators.emt.EMT` (no keys)."""


class LJSpec(_Spec):
    """:class:`ase.calculators.lj.LennardJones`; unset keys keep ASE's defaults."""

    sigma: float | None = Field(None, gt=0, allow_inf_nan=False, description="Å")
    epsilon: float | None = Field(None, gt=0, allow_inf_nan=False, description="eV")
    rc: float | None = Field(None, gt=0, allow_inf_nan=False, description="cutoff, Å")
    ro: float | None = Field(None, gt=0, allow_inf_nan=False,
                             description="onset of the smooth cutoff, Å")
    smooth: bool | None = Field(None, description="smooth cutoff")


class EAMSpec(_Spec):
    potential: str = Field(description="DYNAMO setfl/funcfl file (.eam.alloy, .eam)")
    backend: Literal["auto", "ase", "matscipy"] = Field(
        "auto", description="matscipy if installed (auto), or the one named")


class ManyBodySpec(_Spec):
    parameters: str | dict[str, Any] | None = Field(
        None, description="a matscipy parameter-set name or a full parameter dict")


class TBLiteSpec(_Spec):
    """Keywords of ``tblite.ase.TBLite`` (0.8) plus aceal's ``threads``."""

    method: str | dict[str, Any] = Field("GFN1-xTB", description="GFN1-xTB, GFN2-xTB, "
                                         "IPEA1-xTB or a full parametrisation")
    charge: float | None = Field(None, allow_inf_nan=False, description="e")
    multiplicity: int | None = Field(None, ge=1)
    accuracy: float | None = Field(None, gt=0, allow_inf_nan=False)
    electronic_temperature: float | None = Field(None, ge=0, allow_inf_nan=False,
                                                 description="K")
    max_iterations: int | None = Field(None, gt=0)
    mixer: Any = None
    mixer_memory: int | None = Field(None, ge=0)
    mixer_damping: float | None = Field(None, gt=0, allow_inf_nan=False)
    guess: Literal["sad", "eeq", "eeqbc"] | None = None
    initial_guess: Literal["sad", "eeq", "eeqbc"] | None = Field(
        None, description="alias of guess (TBLite documents it, reads guess)")
    annealing: Any = None
    electric_field: Any = None
    spin_polarization: Any = None
    solvation: Any = None
    cache_api: Any = None
    verbosity: int | None = Field(None, ge=0)
    xtb_config: Any = None
    threads: int | None = Field(None, gt=0, description="OpenMP threads of the SCF")

    @model_validator(mode="after")
    def _one_guess(self) -> TBLiteSpec:
        if self.guess is not None and self.initial_guess is not None:
            raise ValueError("@initial_guess: give guess or its alias initial_guess, not both")
        return self


class GPAWSpec(_Spec):
    """:class:`gpaw.GPAW`: every other key is passed on (GPAW checks them)."""

    model_config = ConfigDict(extra="allow")


class ACESpec(_Spec):
    model: str = Field(description="an aceal model file (.yaml, .json, .yace)")


class ClassSpec(Settings):
    """Any ASE calculator class by dotted path, with keyword arguments."""

    class_: str = Field(alias="class", description="dotted.module.Class")
    kwargs: dict[str, Any] | None = Field(None, description="keyword arguments")


#: the typed model of each known calculator name
SPEC_MODELS: dict[str, type[Settings]] = {
    "EMT": EMTSpec, "LJ": LJSpec, "EAM": EAMSpec, "SW": ManyBodySpec,
    "Tersoff": ManyBodySpec, "KumagaiSi": ManyBodySpec, "tblite": TBLiteSpec,
    "GPAW": GPAWSpec, "ACE": ACESpec,
}


def _typed(d: Mapping[str, Any]):
    """The spec ``d`` (normalised) validated by its model; errors name the key."""
    if "class" in d:
        return parse(ClassSpec, dict(d), where="calculator spec: ")
    return parse(SPEC_MODELS[d["name"]], dict(d), where=f"calculator spec for {d['name']}: ")


def check_spec(spec: str | Mapping[str, Any]) -> None:
    """Validate a spec's name, keys and values without building the calculator (files and
    optional packages are checked by :func:`make_calculator`)."""
    _typed(normalise_spec(spec))


def _given(spec: Settings, *drop: str) -> dict[str, Any]:
    """The keys the user set (so unset ones keep the calculator's own defaults)."""
    return {k: v for k, v in spec.model_dump(exclude_unset=True).items()
            if k not in ("name", *drop)}


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


def _make_eam(spec: EAMSpec, base_dir) -> Calculator:
    path = _existing_file(spec.potential, base_dir, "EAM potential")
    backend = spec.backend
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


def _make_manybody(spec: ManyBodySpec) -> Calculator:
    func_name, module_name, default = _MANYBODY[spec.name.lower()]
    _import_optional("matscipy", "matscipy", spec.name)
    from matscipy.calculators.manybody import Manybody

    forms = importlib.import_module(f"matscipy.calculators.manybody.explicit_forms.{module_name}")
    params = default if spec.parameters is None else spec.parameters
    if isinstance(params, str):
        if not hasattr(forms, params) or not isinstance(getattr(forms, params), dict):
            known = sorted(
                n for n, v in vars(forms).items() if isinstance(v, dict) and "__ref__" in v
            )
            raise AcealInputError(
                f"calculator spec for {spec.name}: unknown parameter set {params!r} "
                f"(known: {', '.join(known)})"
            )
        params = getattr(forms, params)
    form = getattr(forms, func_name)
    return Manybody(**form(dict(params)))


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


def _make_tblite(spec: TBLiteSpec) -> Calculator:
    mod = _import_optional("tblite.ase", "tblite", spec.name)
    kwargs = _given(spec, "initial_guess", "threads")
    if spec.initial_guess is not None:
        kwargs["guess"] = spec.initial_guess  # TBLite documents it, reads 'guess'
    if isinstance(spec.method, str):
        canon = {m.lower(): m for m in _TBLITE_METHODS}.get(spec.method.strip().lower())
        if canon is None:
            raise AcealInputError(
                f"calculator spec for tblite: method: unknown method {spec.method!r} "
                f"(known: {', '.join(_TBLITE_METHODS)})"
            )
        kwargs["method"] = canon
    kwargs.setdefault("verbosity", 0)  # tblite prints every SCF cycle at 1
    threads = spec.threads
    if threads is None and not os.environ.get("OMP_NUM_THREADS"):
        import numba

        threads = numba.get_num_threads()
    return _tblite_class(mod)(threads=threads, **kwargs)


def _make_from_class(spec: ClassSpec, base_dir) -> Calculator:
    dotted = spec.class_
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
    kwargs = dict(spec.kwargs or {})
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
    typed = _typed(normalise_spec(spec))
    if isinstance(typed, ClassSpec):
        return _make_from_class(typed, base_dir)
    name = typed.name
    if isinstance(typed, EMTSpec):
        from ase.calculators.emt import EMT

        return EMT()
    if isinstance(typed, LJSpec):
        from ase.calculators.lj import LennardJones

        return LennardJones(**_given(typed))
    if isinstance(typed, EAMSpec):
        return _make_eam(typed, base_dir)
    if isinstance(typed, ManyBodySpec):
        return _make_manybody(typed)
    if isinstance(typed, TBLiteSpec):
        return _make_tblite(typed)
    if isinstance(typed, GPAWSpec):
        mod = _import_optional("gpaw", "gpaw", name)
        return mod.GPAW(**_given(typed))
    if isinstance(typed, ACESpec):
        path = _existing_file(typed.model, base_dir, "ACE model")
        try:
            from aceal.calculator import ACECalculator
        except ImportError as err:
            raise AcealInputError(
                f"ACE calculator not available in this aceal build: {err}"
            ) from None
        return ACECalculator(str(path))
    raise AcealInputError(f"unknown calculator name {name!r}")  # pragma: no cover

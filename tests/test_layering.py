"""The layer rule of README.md "Layout" and the lazy package imports.

Every module of ``aceal`` belongs to one layer of :data:`LAYERS`; an import (at module
level, inside a function or under ``TYPE_CHECKING`` alike: each is a dependency) may name
only a module of the same layer or of an earlier one.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import aceal

ROOT = Path(aceal.__file__).resolve().parent

#: README.md "Layout", lowest layer first (one entry per layer; the names of an entry may
#: import each other). A module belongs to the layer of its longest matching dotted prefix;
#: the package root ``aceal`` matches only itself.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # importable from anywhere; the root ``aceal`` defines only __version__ and lazy
    # re-exports (resolved on attribute access), so ``import aceal`` loads nothing else
    ("base", ("aceal", "aceal.errors", "aceal.jsonable", "aceal.aseio", "aceal.settings")),
    ("basis", ("aceal.basis",)),
    ("kernels", ("aceal.kernels",)),
    ("formats", ("aceal.formats",)),
    ("model", ("aceal.model",)),
    ("evaluation", ("aceal.evaluation", "aceal.descriptors")),
    # the extrapolation grade sits below the calculator, which loads an ExtrapolationGrader
    # for ``active_set=`` (gamma): active_set is pure numpy/scipy, grade adds the per-atom
    # basis of aceal.descriptors. aceal.uncertainty.{active_set,grade} re-export them.
    ("grade", ("aceal.active_set", "aceal.grade")),
    ("calculator", ("aceal.calculator",)),
    # calculator factories from specs (one of them builds an ACECalculator)
    ("reference", ("aceal.reference",)),
    ("store", ("aceal.store",)),
    ("fit", ("aceal.fit",)),
    ("uncertainty", ("aceal.uncertainty",)),
    ("validate", ("aceal.validate",)),
    ("loop", ("aceal.loop",)),
    ("cli", ("aceal.cli", "aceal.commands")),
]

#: (importer, imported) edges that break the rule in files edited elsewhere; remove an
#: entry together with its import.
KNOWN: set[tuple[str, str]] = set()


def layer_of(module: str) -> int | None:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            hit = module == p or (p != "aceal" and module.startswith(p + "."))
            if hit and len(p) > best:
                best, rank = len(p), i
    return rank


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _lazy_table(package: str) -> dict[str, str]:
    """A package's PEP 562 ``_LAZY`` table (public name -> defining module), if any."""
    path = MODULES.get(package)
    if path is None or path.name != "__init__.py" or "_LAZY" not in path.read_text():
        return {}
    return dict(getattr(importlib.import_module(package), "_LAZY", {}))


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The aceal modules an import node depends on."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        out = []
        for a in node.names:
            sub = f"{base}.{a.name}"
            if sub in MODULES:
                out.append(sub)
            else:
                out.append(_lazy_table(base).get(a.name, base))
        return out
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
        == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def _edges():
    """(importer, line, imported, source text) for every aceal import in aceal/**."""
    for module, path in MODULES.items():
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target == "aceal" or target.startswith("aceal."):
                    src = ast.get_source_segment(text, node) or ast.unparse(node)
                    yield module, node.lineno, target, " ".join(src.split())
        # a lazy re-export (PEP 562 table) is a dependency too; the root's names are the
        # public API, exempt (see LAYERS)
        lazy = _lazy_table(module) if module != "aceal" else {}
        if lazy:
            line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("_LAZY"))
            for name, target in lazy.items():
                yield module, line, target, f"lazy re-export {name!r} from {target}"


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT.parent)}:{line}"


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if layer_of(m) is None)
    assert not missing, f"modules in no layer of LAYERS (add them, and to README Layout): {missing}"


def test_no_module_imports_from_a_later_layer():
    bad, seen = [], set()
    for module, line, target, src in _edges():
        mine, theirs = layer_of(module), layer_of(target)
        if mine is None or theirs is None or theirs <= mine:
            continue
        seen.add((module, target))
        if (module, target) in KNOWN:
            continue
        bad.append(
            f"{_where(module, line)}: {module} (layer {LAYERS[mine][0]!r}) imports {target} "
            f"(layer {LAYERS[theirs][0]!r}, later): {src}"
        )
    assert not bad, "imports against the layer order of README Layout:\n" + "\n".join(bad)
    stale = sorted(KNOWN - seen)
    assert not stale, f"KNOWN lists edges that are gone; remove them: {stale}"


def test_scan_sees_function_level_and_lazy_imports():
    edges = {(m, t) for m, _, t, _ in _edges()}
    assert ("aceal.calculator", "aceal.grade") in edges  # inside ACECalculator.__init__
    assert ("aceal.loop.campaign", "aceal.grade") in edges  # inside Campaign._fit
    assert ("aceal.uncertainty", "aceal.uncertainty.selection") in edges  # PEP 562 table


def _run(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=ROOT.parent,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.parametrize("statement", ["import aceal", "import aceal.store"])
def test_light_imports_do_not_load_numba(statement):
    loaded = _run(
        f"import sys; {statement}; "
        "print(sorted(m for m in ('numba', 'aceal.kernels', 'aceal.calculator') "
        "if m in sys.modules))"
    )
    assert loaded == "[]", f"{statement!r} imported {loaded}"


def test_public_names_resolve_lazily():
    from aceal import ACEBasis, ACECalculator, ACEModel
    from aceal.basis import ACEBasis as basis_cls
    from aceal.calculator import ACECalculator as calc_cls
    from aceal.model import ACEModel as model_cls

    assert (ACEBasis, ACEModel, ACECalculator) == (basis_cls, model_cls, calc_cls)
    for name in ("ACEBasis", "ACEModel", "ACECalculator", "__version__"):
        assert name in dir(aceal)
    with pytest.raises(AttributeError, match="no_such_name"):
        aceal.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", ["aceal", "aceal.uncertainty"])
def test_all_names_resolve(package):
    mod = importlib.import_module(package)
    assert set(mod.__all__) <= set(dir(mod))
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_uncertainty_reexports_the_active_set():
    import aceal.active_set
    from aceal.uncertainty import ActiveSetInverse, build_active_set

    assert ActiveSetInverse is aceal.active_set.ActiveSetInverse
    assert build_active_set is aceal.active_set.build_active_set

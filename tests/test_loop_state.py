"""Campaign state files: exact round trip, generations, crash safety, error messages."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

import aceal.loop.state as state_mod
from aceal.active_set import ActiveSetInverse
from aceal.errors import AcealInputError
from aceal.loop.state import FORMAT_VERSION, STATE_FILE, has_state, load_state, save_state
from aceal.loop.walker import ModelBundle, WalkerState


def _atoms(rng: np.random.Generator, n: int = 5, momenta: bool = True) -> Atoms:
    atoms = Atoms(numbers=rng.choice([13, 29], size=n), positions=rng.random((n, 3)) * 7.3,
                  cell=rng.random((3, 3)) + 4.1 * np.eye(3), pbc=[True, True, False])
    if momenta:
        atoms.set_momenta(rng.normal(size=(n, 3)) * 1e-3)
    atoms.set_tags(np.arange(n))
    atoms.info["config_type"] = "bulk_fcc"
    atoms.info["weight"] = np.float64(1 / 3)
    return atoms


def _state() -> dict:
    rng = np.random.default_rng(7)
    gen = np.random.default_rng(3)
    gen.random(17)
    gen.integers(0, 10, size=3)
    fixed = _atoms(rng)
    fixed.set_constraint(FixAtoms(indices=[0, 2]))
    walkers = [WalkerState(i, _atoms(rng), _atoms(rng), md_time=0.1 * (i + 1) / 3, restarts=i,
                           structure=2 * i, sites=rng.random((5, 3)) if i else None)
               for i in range(2)]
    walkers[0].atoms = fixed
    inverses = {13: ActiveSetInverse(rng.normal(size=(6, 4)), rng.normal(size=(6, 2)), 0.123),
                np.int64(29): ActiveSetInverse(rng.normal(size=(6, 6)), None, 1 / 7)}
    bundle = ModelBundle(3, rng.normal(size=9), rng.normal(size=(4, 9)),
                         {"Al": -3.1234567890123456, "Cu": np.float64(-1 / 3)},
                         {"r_in": 0.5, "strength": 2.0}, inverses)
    pending = [{"atoms": _atoms(rng, 4, momenta=False), "hash": "ab12", "source": "walker",
                "reason": "uncertainty", "rank": 1,
                "selection": {"uncertainty": math.nan, "energy_std": np.float64(0.1 + 0.2),
                              "walker": np.int64(1), "detail": "x", "big": math.inf,
                              "neg": -0.0}}]
    return {
        "version": 1, "fingerprint": '{"elements": ["Al", "Cu"]}', "iteration": 3,
        "phase": "labelling", "reference_calls": 12, "failures": 0,
        "validation_reference_calls": 4, "wall_time_before": 12.000000000000002,
        "wall_time": 1e-300, "stop_reason": None, "imported": 5, "validation_failures": [],
        "e0": {"Al": -0.1, "Cu": 2.5e-17}, "history": [{"iteration": 0, "rmse": None,
                                                       "mae": 0.30000000000000004}],
        "rng": gen.bit_generator.state, "pending": pending, "walkers": walkers,
        "bundle": bundle,
        "md_log": {"candidates": 7, "candidates_by_reason": {"uncertainty": 5},
                   "trace": [(0.1, 0.2, 0.3, 0.4), [1.5, 2.5]], "blowups": ["walker 1"],
                   "events": [{"t": 1.0}], "resumed": True},
        # plain dicts that look like tagged nodes must survive as they are
        "tricky": {"__array__": "a0", "__type__": "x"}, "tricky2": {"__dict__": [[1, 2]]},
        "keys": {1: "one", "1": "string one", 2.5: None, None: 0},
        "arrays": [np.arange(5, dtype=np.int32), np.array(np.nan), np.zeros((0, 3)),
                   np.array([True, False]), np.asfortranarray(rng.random((3, 4)))],
    }


def _same(a, b, where: str = "state") -> None:
    """Assert ``b`` equals ``a`` bit for bit (tuples in ``a`` compare as lists)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), where
    elif isinstance(a, Atoms):
        assert isinstance(b, Atoms) and b.calc is None, where
        assert sorted(a.arrays) == sorted(b.arrays), where
        for k in a.arrays:
            _same(a.arrays[k], b.arrays[k], f"{where}.arrays[{k}]")
        _same(a.cell.array, b.cell.array, f"{where}.cell")
        assert list(a.pbc) == list(b.pbc), where
        _same(a.info, b.info, f"{where}.info")
        _same([c.todict() for c in a.constraints], [c.todict() for c in b.constraints], where)
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(b) == list(a), where
        assert [type(k) for k in b] == [type(k.item()) if isinstance(k, np.generic) else type(k)
                                        for k in a], where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float | np.floating):
        assert type(b) is float, where
        assert struct.pack("<d", a) == struct.pack("<d", b), where
    elif isinstance(a, bool | np.bool_):
        assert type(b) is bool and b == a, where
    elif isinstance(a, int | np.integer):
        assert type(b) is int and b == a, where
    else:
        assert type(a) is type(b) and a == b, where


def test_round_trip_bit_exact(tmp_path: Path) -> None:
    state = _state()
    save_state(tmp_path, state)
    back = load_state(tmp_path)
    _same(state, back)
    assert math.isnan(back["pending"][0]["selection"]["uncertainty"])
    assert np.array_equal(back["walkers"][0].atoms.get_momenta(),
                          state["walkers"][0].atoms.get_momenta())
    assert isinstance(back["walkers"][0].atoms.constraints[0], FixAtoms)
    assert back["bundle"].inverses[29].complement is None
    assert sorted(back["bundle"].inverses) == [13, 29]
    assert back["pending"][0]["atoms"].info["config_type"] == "bulk_fcc"
    # the restored generator continues exactly like the original
    a, b = np.random.default_rng(), np.random.default_rng(3)
    a.bit_generator.state = back["rng"]
    b.bit_generator.state = state["rng"]
    assert np.array_equal(a.random(10), b.random(10))
    # a second round trip is stable too
    save_state(tmp_path, back)
    _same(state, load_state(tmp_path))


def test_state_json_format(tmp_path: Path) -> None:
    save_state(tmp_path, {"x": np.ones(2)})
    doc = json.loads((tmp_path / STATE_FILE).read_text())
    assert doc["format"] == "aceal-campaign-state"
    assert doc["format_version"] == FORMAT_VERSION == 1
    assert doc["arrays"] == "state-1.npz"
    assert doc["state"] == {"x": {"__array__": "a0"}}
    with np.load(tmp_path / "state-1.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["a0"], np.ones(2))


def test_generations(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None and not has_state(tmp_path)
    save_state(tmp_path, {"v": np.array([1.0])})
    save_state(tmp_path, {"v": np.array([2.0])})
    assert [p.name for p in tmp_path.glob("state-*.npz")] == ["state-2.npz"]
    assert has_state(tmp_path)
    (tmp_path / "state-1.npz").write_bytes(b"leftover")
    assert load_state(tmp_path)["v"][0] == 2.0
    # a reader deletes nothing (it may look while the campaign writes); the next save does
    assert len(list(tmp_path.glob("state-*.npz"))) == 2
    save_state(tmp_path, {"v": np.array([3.0])})
    assert [p.name for p in tmp_path.glob("state-*.npz")] == ["state-3.npz"]


def test_kill_between_npz_and_json(tmp_path: Path) -> None:
    save_state(tmp_path, {"v": np.array([1.0]), "phase": "done"})
    buf = io.BytesIO()
    np.savez(buf, a0=np.array([99.0]))
    (tmp_path / "state-2.npz").write_bytes(buf.getvalue())  # new generation, json not updated
    (tmp_path / f".state.json.dead{state_mod.TMP_SUFFIX}").write_bytes(b"{")  # half written
    back = load_state(tmp_path)
    assert back["phase"] == "done" and back["v"].tolist() == [1.0]
    save_state(tmp_path, back)  # the next save uses a fresh generation and cleans up
    assert json.loads((tmp_path / STATE_FILE).read_text())["arrays"] == "state-3.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-3.npz", STATE_FILE]


def test_hash_mismatch_and_missing_npz(tmp_path: Path) -> None:
    save_state(tmp_path, {"v": np.arange(3)})
    npz = tmp_path / "state-1.npz"
    data = bytearray(npz.read_bytes())
    data[-30] ^= 1
    npz.write_bytes(bytes(data))
    with pytest.raises(AcealInputError, match="sha256") as err:
        load_state(tmp_path)
    assert STATE_FILE in str(err.value) and "\n" not in str(err.value)
    npz.unlink()
    with pytest.raises(AcealInputError, match="missing"):
        load_state(tmp_path)


def test_corrupt_json(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"format": "aceal-camp')
    with pytest.raises(AcealInputError, match="unreadable") as err:
        load_state(tmp_path)
    assert "\n" not in str(err.value)


def test_unknown_type_is_rejected(tmp_path: Path) -> None:
    save_state(tmp_path, {"w": ActiveSetInverse(np.eye(2))})
    doc = json.loads((tmp_path / STATE_FILE).read_text())
    doc["state"]["w"]["__type__"] = "os.system"
    (tmp_path / STATE_FILE).write_text(json.dumps(doc))
    with pytest.raises(AcealInputError, match="unknown type"):
        load_state(tmp_path)


def test_legacy_pickle(tmp_path: Path) -> None:
    (tmp_path / "state.pkl").write_bytes(b"\x80\x04N.")
    assert has_state(tmp_path)
    with pytest.raises(AcealInputError) as err:
        load_state(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "state.pkl" in msg and "pickle" in msg
    assert "older aceal" in msg and "another output directory" in msg


def test_unknown_format_version(tmp_path: Path) -> None:
    save_state(tmp_path, {"v": 1})
    doc = json.loads((tmp_path / STATE_FILE).read_text())
    doc["format_version"] = 7
    (tmp_path / STATE_FILE).write_text(json.dumps(doc))
    with pytest.raises(AcealInputError, match="version 7.*reads version 1") as err:
        load_state(tmp_path)
    assert "\n" not in str(err.value)


def test_atoms_with_calculator_rejected(tmp_path: Path) -> None:
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])
    atoms.calc = SinglePointCalculator(atoms, energy=1.0)
    with pytest.raises(ValueError, match="calculator"):
        save_state(tmp_path, {"pending": [{"atoms": atoms}]})
    assert not has_state(tmp_path)


def test_no_pickle_in_module() -> None:
    source = Path(state_mod.__file__).read_text()
    assert "import pickle" not in source and "pickle." not in source
    assert "allow_pickle=False" in source

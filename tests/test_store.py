"""Tests of the training store (``aceal.store``) and ``aceal data``."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from aceal.cli import main
from aceal.errors import AcealInputError
from aceal.store import (
    SELECTION_FIELDS,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    export_xyz,
    import_xyz,
    is_store,
    open_store,
    read_configurations,
)
from aceal.store.lock import holder_path
from aceal.store.schema import HEADER_ATTR, LOCK_NAME

DATA = Path(__file__).parent / "data"
SI_SMALL = DATA / "si_small.xyz"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def bits(x) -> bytes:
    """Exact bit pattern of a float64 array/scalar."""
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64)).tobytes()


def labelled(n: int, seed: int, *, energy=True, forces=True, stress=True, **info) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms(
        numbers=rng.choice([1, 6, 14, 29], size=n),
        positions=rng.normal(scale=5.0, size=(n, 3)),
        cell=rng.normal(size=(3, 3)) + 8 * np.eye(3),
        pbc=rng.random(3) < 0.5,
    )
    results = {}
    if energy:
        results["energy"] = float(rng.normal() * 100)
    if forces:
        results["forces"] = rng.normal(size=(n, 3))
    if stress:
        results["stress"] = rng.normal(size=6) * 1e-3
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(info)
    return atoms


def assert_same(a: Atoms, b: Atoms) -> None:
    """Bit-for-bit equality of structure and labels, and equal config_type."""
    assert np.array_equal(a.numbers, b.numbers)
    assert bits(a.positions) == bits(b.positions)
    assert bits(a.cell.array) == bits(b.cell.array)
    assert np.array_equal(a.pbc, b.pbc)
    ra = a.calc.results if a.calc is not None else {}
    rb = b.calc.results if b.calc is not None else {}
    assert sorted(k for k in ra if k in ("energy", "forces", "stress")) == sorted(
        k for k in rb if k in ("energy", "forces", "stress")
    )
    for key in ("energy", "forces", "stress"):
        if key in ra:
            assert bits(ra[key]) == bits(rb[key]), key
    assert a.info.get("config_type") == b.info.get("config_type")


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with size and mtime (to prove nothing was written)."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def si_small() -> list[Atoms]:
    return read(SI_SMALL, index=":")


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------


def test_xyz_store_xyz_roundtrip_is_bit_for_bit(tmp_path, si_small):
    with open_store(tmp_path / "s.zarr", "w") as store:
        assert import_xyz(store, [SI_SMALL]) == len(si_small) == 5
    with open_store(tmp_path / "s.zarr") as store:
        for a, b in zip(si_small, store[:], strict=True):
            assert_same(a, b)
            assert b.info["source"] == "import" and b.info["reason"] == "import"
            assert b.info["description"] == a.info["description"]  # other info kept
        export_xyz(store, tmp_path / "out.xyz")
    again = read(tmp_path / "out.xyz", index=":")
    assert len(again) == 5
    for a, b in zip(si_small, again, strict=True):
        assert_same(a, b)


def test_full_precision_floats_survive_export(tmp_path):
    images = [labelled(n, seed) for seed, n in enumerate([1, 3, 17])]
    images.append(labelled(4, 99, stress=False, config_type="molecule"))
    images[-1].cell[:] = 0.0
    images[-1].pbc = False
    with open_store(tmp_path / "s", "w") as store:
        store.append(images)
        export_xyz(store, tmp_path / "x.xyz")
    back = read(tmp_path / "x.xyz", index=":")
    for a, b in zip(images, back, strict=True):
        assert_same(a, b)
    with open_store(tmp_path / "t", "w") as store:
        import_xyz(store, [tmp_path / "x.xyz"])
        for a, b in zip(images, store[:], strict=True):
            assert_same(a, b)


def test_missing_labels_stay_missing(tmp_path):
    images = [
        labelled(3, 1, energy=False, forces=False, stress=False),
        labelled(3, 2, forces=False),
        labelled(3, 3, stress=False),
        labelled(3, 4, energy=False),
    ]
    with open_store(tmp_path / "s", "w") as store:
        store.append(images, require=())
        assert store.column("has_energy").tolist() == [False, True, True, False]
        assert store.column("has_forces").tolist() == [False, False, True, True]
        assert store.column("has_stress").tolist() == [False, True, False, True]
        assert np.isnan(store.column("energy")[[0, 3]]).all()  # NaN, never 0
        back = store[:]
        assert back[0].calc is None
        assert set(back[1].calc.results) == {"energy", "stress"}
        assert set(back[2].calc.results) == {"energy", "forces"}
        assert set(back[3].calc.results) == {"forces", "stress"}
        for a, b in zip(images, back, strict=True):
            assert_same(a, b)
        export_xyz(store, tmp_path / "x.xyz")
    with open_store(tmp_path / "t", "w") as store:
        import_xyz(store, [tmp_path / "x.xyz"], require=())
        for a, b in zip(images, store[:], strict=True):
            assert_same(a, b)


def test_ragged_sizes_indexing_and_chunks(tmp_path):
    sizes = [1, 2000, 7, 64, 1, 500, 3, 1999, 2]
    images = [labelled(n, seed, config_type=f"t{seed % 3}") for seed, n in enumerate(sizes)]
    with open_store(tmp_path / "s", "w") as store:
        store.append(images[:4])
        for atoms in images[4:6]:
            store.append(atoms)
        idx = store.append(images[6:])
        assert idx.tolist() == [6, 7, 8]
        assert len(store) == len(sizes) and store.n_atoms == sum(sizes)
    with open_store(tmp_path / "s") as store:
        assert store.column("natoms").tolist() == sizes
        for i, atoms in enumerate(images):
            assert_same(atoms, store[i])
        assert_same(images[-1], store[-1])
        for a, b in zip(images[2:7:2], store[2:7:2], strict=True):
            assert_same(a, b)
        picked = store[[7, 1, 7, 0]]  # unsorted, repeated
        for i, atoms in zip([7, 1, 7, 0], picked, strict=True):
            assert_same(images[i], atoms)
        mask = np.array(sizes) > 100
        assert [len(a) for a in store[mask]] == [2000, 500, 1999]
        chunks = list(store.iter_chunks(4))
        assert [len(c) for c in chunks] == [4, 4, 1]
        assert [len(a) for c in chunks for a in c] == sizes
        assert [len(a) for a in store] == sizes
        with pytest.raises(IndexError):
            store[len(sizes)]


def test_filters_views_and_provenance(tmp_path):
    with open_store(tmp_path / "s", "w") as store:
        store.append(
            [labelled(2, 0, config_type="bulk"), labelled(3, 1, config_type="surface")],
            source="seed",
            reason="seed",
            iteration=0,
            calculator="vasp",
        )
        walker = labelled(4, 2, config_type="bulk", source="stale", iteration=0)
        store.append(
            walker,
            source="walker",  # keyword overrides the stale info entry
            rank=3,
            reason="uncertainty",
            iteration=2,
            wall_time=123.5,
            timestamp=1.7e9,
            selection={"uncertainty": 0.25, "gamma_max": 7.0, "committee": [1, 2]},
            weight=2.0,
        )
        from_info = labelled(5, 3, iteration=4, source="walker", reason="rare_event", rank=1)
        from_info.info["selection"] = {"indicator": 3.5}
        from_info.info["note"] = "kept"
        store.append(from_info)

        assert store.indices(config_type="bulk").tolist() == [0, 2]
        assert store.indices(source="walker").tolist() == [2, 3]
        assert store.indices(iteration=[0, 4]).tolist() == [0, 1, 3]
        assert store.indices(source="walker", iteration=2).tolist() == [2]
        assert store.indices(config_type="nonexistent").tolist() == []
        view = store.filter(source="walker")
        assert len(view) == 2 and [len(a) for a in view] == [4, 5]
        assert len(view[0:1]) == 1 and len(view[1]) == 5
        assert [len(c) for c in view.iter_chunks(1)] == [1, 1]

        info = store[2].info
        assert info["source"] == "walker" and info["rank"] == 3 and info["iteration"] == 2
        assert info["reason"] == "uncertainty" and info["wall_time"] == 123.5
        assert info["timestamp"] == 1.7e9 and info["weight"] == 2.0
        assert info["selection"] == {"uncertainty": 0.25, "gamma_max": 7.0, "committee": [1, 2]}
        assert info["config_type"] == "bulk"
        assert "calculator" not in info
        info = store[3].info
        assert info["reason"] == "rare_event" and info["rank"] == 1 and info["iteration"] == 4
        assert info["selection"] == {"indicator": 3.5} and info["note"] == "kept"
        assert store[0].info["calculator"] == "vasp" and "rank" not in store[0].info
        sel = store.column("selection")
        assert sel.shape == (4, len(SELECTION_FIELDS)) and np.isnan(sel[0]).all()


def test_failures_and_models(tmp_path):
    with open_store(tmp_path / "s", "w") as store:
        atoms = labelled(6, 5, energy=False, forces=False, stress=False)
        assert (
            store.add_failure(
                atoms, "SCF not converged", iteration=3, source="walker", rank=2, calculator="vasp"
            )
            == 0
        )
        assert store.add_failure(atoms[:2], "x" * 5000) == 1
        assert store.add_model("model text ü", 1, {"energy_rmse": 0.0021}) == 0
        assert store.add_model("second", 2) == 1
        assert len(store) == 0  # failures are never training data
    with open_store(tmp_path / "s") as store:
        fails = store.failures()
        assert [f.reason for f in fails] == ["SCF not converged", "x" * 5000]
        assert fails[0].iteration == 3 and fails[0].rank == 2 and fails[0].source == "walker"
        assert fails[0].calculator == "vasp" and fails[1].iteration is None
        assert bits(fails[0].atoms.positions) == bits(atoms.positions)
        assert len(fails[1].atoms) == 2
        models = store.models()
        assert models[0].text == "model text ü" and models[0].metrics == {"energy_rmse": 0.0021}
        assert models[1].iteration == 2 and models[1].metrics == {}
        summary = store.summary()
        assert summary["failures"] == 2 and summary["models"] == 2


# --------------------------------------------------------------------------------------
# refusals: nothing written
# --------------------------------------------------------------------------------------


def test_append_without_required_energy_writes_nothing(tmp_path):
    path = tmp_path / "s"
    with open_store(path, "w") as store:
        store.append([labelled(2, 0)])
    before = snapshot(path)
    with open_store(path, "a") as store:
        bad = [labelled(2, 1), labelled(3, 2, energy=False), labelled(2, 3)]
        with pytest.raises(AcealInputError, match=r"configuration 1 .* has no energy"):
            store.append(bad)
        with pytest.raises(AcealInputError, match="has no forces"):
            store.append([labelled(2, 4, forces=False)], require=("energy", "forces"))
        with pytest.raises(AcealInputError, match="energy is not finite"):
            store.append([_with_energy(labelled(2, 5, energy=False), np.nan)])
        with pytest.raises(AcealInputError, match="iteration must be a non-negative"):
            store.append([labelled(2, 6)], iteration=-3)
        assert len(store) == 1
    after = snapshot(path)
    assert {k: v for k, v in after.items()} == before  # not one byte changed
    with open_store(path) as store:
        assert len(store) == 1


def _with_energy(atoms: Atoms, energy: float) -> Atoms:
    atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


def test_not_a_store_is_refused_without_writing(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("my data")
    before = snapshot(junk)
    for mode in ("r", "a", "w"):
        with pytest.raises(StoreError, match="not an aceal store"):
            open_store(junk, mode)
    assert snapshot(junk) == before and not (junk / LOCK_NAME).exists()

    plain = tmp_path / "plain.zarr"
    zarr.create_group(store=str(plain), zarr_format=3, attributes={"x": 1})
    before = snapshot(plain)
    with pytest.raises(StoreError, match="not an aceal training store"):
        open_store(plain, "a")
    assert snapshot(plain) == before

    with pytest.raises(StoreError):
        open_store(tmp_path / "missing", "r")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(StoreError, match="not a directory"):
        open_store(SI_SMALL, "a")
    assert not is_store(junk) and not is_store(plain)


def test_existing_store_is_never_overwritten(tmp_path):
    with open_store(tmp_path / "s", "w") as store:
        store.append(labelled(2, 0))
    with pytest.raises(StoreError, match="never overwritten"):
        open_store(tmp_path / "s", "w")
    with open_store(tmp_path / "s") as store:
        assert len(store) == 1


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "s"
    with open_store(path, "w") as store:
        store.append(labelled(2, 0))
    group = zarr.open_group(str(path), mode="r+")
    header = dict(group.attrs[HEADER_ATTR])
    header["format_version"] = 99
    group.attrs[HEADER_ATTR] = header
    before = snapshot(path)
    for mode in ("r", "a"):
        with pytest.raises(StoreVersionError, match="format version 99.*upgrade aceal"):
            open_store(path, mode)
    assert snapshot(path) == before
    assert main(["data", "info", str(path)]) == 2


# --------------------------------------------------------------------------------------
# locking and readers
# --------------------------------------------------------------------------------------


_HOLDER = """
import sys, time
from aceal.store import open_store
store = open_store(sys.argv[1], "a")
print("locked", flush=True)
time.sleep(60)
"""


def test_second_writer_is_refused_and_lock_freed_when_the_writer_dies(tmp_path):
    path = tmp_path / "s"
    writer = open_store(path, "w")
    writer.append(labelled(2, 0))
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()} \\(this process\\)"):
        open_store(path, "a")
    with open_store(path) as reader:  # readers need no lock
        assert len(reader) == 1
        writer.append(labelled(3, 1))
        assert len(reader) == 1 and reader.refresh() and len(reader) == 2
    writer.close()
    assert not holder_path(path / LOCK_NAME).exists()

    # another process holds it; SIGKILL frees it (the kernel releases flock)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        host = socket.gethostname()
        with pytest.raises(StoreLockedError, match=f"writer pid {holder.pid} on host {host}"):
            open_store(path, "a")
    finally:
        holder.kill()
        holder.wait()
    assert holder_path(path / LOCK_NAME).exists()  # the dead writer's record is left
    with open_store(path, "a") as store:  # ... but its lock is gone
        store.append(labelled(2, 2))
        record = json.loads(holder_path(path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid()
    with open_store(path) as reader:
        assert len(reader) == 3


def test_uncommitted_data_is_ignored_by_readers_and_trimmed_by_writers(tmp_path):
    path = tmp_path / "s"
    store = open_store(path, "w")
    store.append([labelled(3, 0), labelled(5, 1)])
    committed = [a.copy() for a in store[:]]
    # simulate a crash after the data were written but before the commit marker
    from aceal.store.records import Categories, encode_configs

    data = encode_configs([labelled(40, 2)], Categories({}))
    data["atom_start"] = data["atom_start"] + store.n_atoms
    store._tables["configs"].write(store._commit["lengths"]["configs"], data)
    assert store._tables["configs"].array("positions").shape[0] > store.n_atoms
    store._lock.release()  # the process "died": no trim, no commit
    before = snapshot(path)
    with open_store(path) as reader:
        assert len(reader) == 2 and reader.n_atoms == 8
        assert reader._tables["configs"].array("positions").shape[0] > 8  # untouched
        assert [len(a) for a in reader] == [3, 5]
        with pytest.raises(StoreError, match="read-only"):
            reader.append(labelled(1, 9))
    assert snapshot(path) == before  # a reader never writes
    with open_store(path, "a") as writer:
        assert writer._tables["configs"].array("positions").shape[0] == 8  # trimmed
        assert writer._tables["configs"].array("energy").shape[0] == 2
        writer.append(labelled(1, 3))
    with open_store(path) as reader:
        assert len(reader) == 3 and len(reader[2]) == 1
        assert bits(reader[1].positions) == bits(committed[1].positions)


# --------------------------------------------------------------------------------------
# kill -9 at random moments
# --------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    '''
    import os, sys
    import numpy as np
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator


    def make_config(j):
        """Deterministic configuration number j (full-precision random floats)."""
        rng = np.random.default_rng(1000 + j)
        n = int(rng.choice([1, 2, 5, 13, 40, 150]))
        atoms = Atoms(numbers=rng.choice([1, 8, 14], size=n),
                      positions=rng.normal(size=(n, 3)) * 4,
                      cell=np.eye(3) * 9 + rng.normal(size=(3, 3)), pbc=[True, j % 2 == 0, True])
        results = {"energy": float(rng.normal() * 50)}
        if j % 5:
            results["forces"] = rng.normal(size=(n, 3))
        if j % 3:
            results["stress"] = rng.normal(size=6) * 1e-3
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["config_type"] = f"type{j % 4}" if j % 11 else f"new{j}"
        return atoms


    def run(path, report, seed):
        from aceal.store import open_store
        fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        rng = np.random.default_rng(seed)
        store = open_store(path, "a", durable=bool(seed % 2))
        j = len(store)
        os.write(fd, f"ready {j}\\n".encode())
        while True:
            k = int(rng.integers(1, 6))
            os.write(fd, f"attempt {j + k}\\n".encode())
            store.append([make_config(i) for i in range(j, j + k)], iteration=j)
            j += k
            os.write(fd, f"committed {j}\\n".encode())


    def serve():
        import aceal.store  # noqa: F401  (preload: children start instantly)
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "go":
                pid = os.fork()
                if pid == 0:
                    try:
                        run(cmd[1], cmd[2], int(cmd[3]))
                    finally:
                        os._exit(1)
                print(pid, flush=True)
            elif cmd[0] == "reap":
                os.waitpid(int(cmd[1]), 0)
                print("ok", flush=True)


    if __name__ == "__main__":
        serve()
    '''
)


def _report(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        word, _, num = line.partition(" ")
        if num.isdigit():
            out.append((word, int(num)))
    return out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_during_appends_never_loses_or_corrupts(tmp_path):
    script = tmp_path / "killwriter.py"
    script.write_text(WRITER)
    spec = importlib.util.spec_from_file_location("killwriter", script)
    killwriter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(killwriter)

    path = tmp_path / "s"
    open_store(path, "w").close()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    server = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    rnd = random.Random(20261122)
    checked = 0
    committed_max = 0
    attempted_max = 0
    kills_mid_append = 0
    try:
        for round_ in range(24):
            report = tmp_path / f"report{round_}.txt"
            server.stdin.write(f"go {path} {report} {round_}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            if round_ % 6 == 5:  # sometimes kill while opening / recovering
                time.sleep(rnd.uniform(0.0, 0.3))
            else:
                deadline = time.monotonic() + 20
                while not any(w == "ready" for w, _ in _report(report)):
                    assert time.monotonic() < deadline, "writer did not start"
                    time.sleep(0.01)
                time.sleep(rnd.uniform(0.02, 0.5))
            os.kill(pid, signal.SIGKILL)
            server.stdin.write(f"reap {pid}\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "ok"

            events = _report(report)
            committed_max = max([committed_max] + [n for w, n in events if w == "committed"])
            attempted_max = max([attempted_max] + [n for w, n in events if w == "attempt"])
            kills_mid_append += bool(events) and events[-1][0] == "attempt"
            with open_store(path) as store:
                n = len(store)
                assert committed_max <= n <= max(attempted_max, committed_max)
                new = store[checked:n]
                for j, atoms in zip(range(checked, n), new, strict=True):
                    assert_same(killwriter.make_config(j), atoms)
                checked = n
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    assert committed_max > 20 and kills_mid_append >= 3
    with open_store(path, "a") as store:  # the killed writer's lock died with it
        n = len(store)
        store.append([killwriter.make_config(j) for j in range(n, n + 3)])
    with open_store(path) as store:
        assert len(store) == n + 3
        for j, atoms in enumerate(store):
            assert_same(killwriter.make_config(j), atoms)
            assert atoms.info["config_type"] == killwriter.make_config(j).info["config_type"]


# --------------------------------------------------------------------------------------
# read_configurations (used by the fitting code)
# --------------------------------------------------------------------------------------


def test_read_configurations_accepts_xyz_store_path_and_store(tmp_path, si_small):
    path = tmp_path / "s"
    with open_store(path, "w") as store:
        import_xyz(store, [SI_SMALL])
    from_xyz = read_configurations(SI_SMALL)
    from_path = read_configurations(path)
    with open_store(path) as store:
        from_store = read_configurations(store)
    for images in (from_xyz, from_path, from_store):
        assert len(images) == 5
        for a, b in zip(si_small, images, strict=True):
            assert_same(a, b)
    ct = si_small[0].info["config_type"]
    assert (
        len(read_configurations(path, config_type=ct))
        == len(read_configurations(SI_SMALL, config_type=ct))
        >= 1
    )
    assert read_configurations(path, require=("energy", "forces", "stress"))
    with pytest.raises(StoreError):
        read_configurations(tmp_path)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def test_cli_import_info_export(tmp_path, capsys, si_small):
    store = tmp_path / "s.zarr"
    assert main(["data", "import", str(store), str(SI_SMALL)]) == 0
    assert "imported 5 configurations" in capsys.readouterr().out
    assert main(["data", "import", str(store), str(SI_SMALL), "--config-type", "extra"]) == 0
    capsys.readouterr()

    assert main(["data", "info", str(store), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["configs"] == 10 and summary["config_types"]["extra"] == 5
    assert summary["elements"] == {"Si": 2 * sum(len(a) for a in si_small)}
    assert summary["sources"] == {"import": 10} and summary["labels"]["stress"] == 10
    assert main(["data", "info", str(store)]) == 0
    text = capsys.readouterr().out
    assert "configurations: 10" in text and "extra 5" in text

    out = tmp_path / "extra.xyz"
    assert main(["data", "export", str(store), str(out), "--config-type", "extra"]) == 0
    assert "wrote 5 configurations" in capsys.readouterr().out
    for a, b in zip(si_small, read(out, index=":"), strict=True):
        a.info["config_type"] = "extra"
        assert_same(a, b)
    assert main(["data", "export", str(store), str(out)]) == 2  # exists
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err
    assert main(["data", "export", str(store), str(out), "--force", "--source", "none"]) == 0
    assert out.read_text() == ""


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    cases = [
        ["data", "info", str(junk)],
        ["data", "info", str(tmp_path / "missing")],
        ["data", "import", str(tmp_path / "new"), str(tmp_path / "nope.xyz")],
        ["data", "export", str(junk), str(tmp_path / "o.xyz")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("aceal data: error:") and err.count("\n") == 1, err
    assert not (tmp_path / "o.xyz").exists()

    unlabelled = tmp_path / "u.xyz"
    unlabelled.write_text('2\nProperties=species:S:1:pos:R:3 pbc="F F F"\nH 0 0 0\nH 0 0 0.7\n')
    store = tmp_path / "s"
    assert main(["data", "import", str(store), str(SI_SMALL), str(unlabelled)]) == 2
    err = capsys.readouterr().err
    assert "has no energy" in err and err.count("\n") == 1
    assert not store.exists()  # validated before the store was created
    assert main(["data", "import", str(store), str(unlabelled), "--allow-unlabelled"]) == 0
    capsys.readouterr()
    assert main(["data", "import", str(store), str(SI_SMALL), "--energy-key", "nokey"]) == 2
    with open_store(store) as s:
        assert len(s) == 1 and s[0].calc is None

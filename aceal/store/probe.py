"""Classify a path (absent / empty / interrupted creation / store) without writing."""

from __future__ import annotations

import os
from pathlib import Path

import zarr

import aceal
from aceal.store.atomic import AtomicLocalStore
from aceal.store.errors import StoreError, StoreVersionError
from aceal.store.schema import (
    COMMIT_ATTR,
    CREATING_ATTR,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_ATTR,
    LOCK_NAME,
)


def open_group(path: Path, read_only: bool, durable: bool) -> tuple[zarr.Group, AtomicLocalStore]:
    """Open the root group of an existing store (``r`` or ``r+``, zarr format 3)."""
    zstore = AtomicLocalStore(path, read_only=read_only, durable=durable)
    group = zarr.open_group(store=zstore, mode="r" if read_only else "r+", use_consolidated=False)
    return group, zstore


def probe(path: Path) -> str:
    """Classify ``path`` without writing: ``absent``, ``empty``, ``creating`` or ``store``.

    Raises
    ------
    StoreError
        ``path`` exists but is not an aceal store (or is a newer one).
    """
    if not path.exists():
        return "absent"
    if not path.is_dir():
        raise StoreError(f"{path} is not a directory, so not an aceal store")
    entries = [p.name for p in path.iterdir() if not p.name.startswith(LOCK_NAME)]
    if not entries:
        return "empty"
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path} is not an aceal store (no zarr.json); nothing was written")
    try:
        group, _ = open_group(path, read_only=True, durable=False)
        attrs = dict(group.attrs)
        zarr_format = group.metadata.zarr_format
    except Exception as err:  # zarr raises many kinds for a bad zarr.json
        raise StoreError(f"{path} is not an aceal store ({type(err).__name__}: {err})") from None
    if zarr_format != 3:
        raise StoreError(f"{path} is a zarr v{zarr_format} group, not an aceal store")
    if HEADER_ATTR in attrs:
        header = attrs[HEADER_ATTR]
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise StoreError(f"{path} is not an aceal training store")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreVersionError(
                f"{path} has store format version {version}, this aceal "
                f"({aceal.__version__}) reads versions up to {FORMAT_VERSION}; upgrade aceal"
            )
        if not isinstance(attrs.get(COMMIT_ATTR), dict):
            raise StoreError(f"{path}: commit marker missing or damaged")
        return "store"
    if CREATING_ATTR in attrs:
        return "creating"
    raise StoreError(f"{path} is a zarr group but not an aceal training store")


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an aceal training store this version can read."""
    try:
        return probe(Path(path)) == "store"
    except StoreError:
        return False


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk by all files under ``path``."""
    total = 0
    for p in Path(path).rglob("*"):
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if p.is_file():
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total

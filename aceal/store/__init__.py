"""Training-data store: labelled configurations, failures and models on zarr.

See ``docs/store.md`` for the on-disk format.  Typical use::

    from aceal.store import open_store

    with open_store("train.zarr", "a") as store:
        store.append(images, source="walker", rank=3, reason="uncertainty", iteration=2)
    with open_store("train.zarr") as store:
        bulk = store.filter(config_type="bulk")[:]
"""

from aceal.store.campaign import FailureRecord, ModelRecord
from aceal.store.errors import StoreError, StoreLockedError, StoreVersionError
from aceal.store.probe import is_store
from aceal.store.schema import FORMAT_VERSION, SELECTION_FIELDS
from aceal.store.store import TrainingStore, open_store
from aceal.store.view import StoreView
from aceal.store.xyz import export_xyz, import_xyz, read_configurations, write_xyz

__all__ = [
    "FORMAT_VERSION",
    "SELECTION_FIELDS",
    "FailureRecord",
    "ModelRecord",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "StoreView",
    "TrainingStore",
    "is_store",
    "export_xyz",
    "import_xyz",
    "open_store",
    "read_configurations",
    "write_xyz",
]

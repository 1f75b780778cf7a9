"""An IO manager that keeps fitted models in the blob store, safely.

Models are written with skops (not pickle) and loaded only if (a) their bytes still have the
sha256 recorded in Dagster's event log when they were written and (b) every type they contain
is trusted (numpy, builtins, scikit-learn).
"""

import hashlib

import dagster as dg

from skinseg_assets.assets.metadata import latest_materialization_metadata
from skinseg_assets.resources.blob_store import BlobStore, uri_metadata

TRUSTED_MODULE_PREFIXES = ("sklearn.",)


class UntrustedModelError(RuntimeError):
    """A stored model failed its integrity or type check and was not loaded."""


def dumps_model(model) -> bytes:
    import skops.io as sio

    return sio.dumps(model)


def loads_model(data: bytes, source: str):
    """Load skops bytes, refusing any type outside the trusted modules."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    refused = [name for name in untrusted if not name.startswith(TRUSTED_MODULE_PREFIXES)]
    if refused:
        raise UntrustedModelError(f"{source} contains untrusted types {refused}; not loaded")
    return sio.loads(data, trusted=untrusted)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified_bytes(blob_store: BlobStore, key: str, expected_sha256: str | None, recorded_as: str) -> bytes:
    """A blob's bytes, refused if they no longer have the sha256 recorded when it was written.

    `recorded_as` says who recorded it, for the message: "... but <recorded_as> <sha256>". A blob
    whose sha256 was recorded and that is gone is refused the same way; with nothing recorded, a
    missing blob is FileNotFoundError.
    """
    try:
        data = blob_store.read_bytes(key)
    except FileNotFoundError:
        if expected_sha256 is None:
            raise
        raise UntrustedModelError(
            f"{blob_store.uri(key)} is missing, but {recorded_as} {expected_sha256}: "
            "the file was removed outside skinseg; not loaded"
        ) from None
    actual = sha256_of(data)
    if expected_sha256 is not None and actual != expected_sha256:
        raise UntrustedModelError(
            f"{blob_store.uri(key)} has sha256 {actual}, but {recorded_as} {expected_sha256}: "
            "the file was changed outside skinseg; not loaded"
        )
    return data


def recorded_sha256(instance: dg.DagsterInstance | None, asset_key: dg.AssetKey, partition: str | None) -> str | None:
    """The sha256 recorded at the latest materialization of this asset (partition), if any."""
    if instance is None:
        return None
    value = (latest_materialization_metadata(instance, asset_key, partition) or {}).get("sha256")
    return value.value if value is not None else None


class ModelIOManager(dg.ConfigurableIOManager):
    """Stores model assets as `<asset key>.skops` in the blob store."""

    blob_store: dg.ResourceDependency[BlobStore]

    def _key(self, context: dg.InputContext | dg.OutputContext) -> str:
        path = "/".join(context.asset_key.path)
        if context.has_asset_partitions:
            path += f"/{context.asset_partition_key}"
        return f"{path}.skops"

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        data = dumps_model(obj)
        uri = self.blob_store.write_bytes(self._key(context), data)
        context.add_output_metadata(
            {
                "File": uri_metadata(uri),
                "sha256": sha256_of(data),  # recorded_sha256 reads it back before each load
                "Size (bytes)": dg.MetadataValue.int(len(data)),
                "Format": "skops",
            }
        )

    def load_input(self, context: dg.InputContext):
        key = self._key(context)
        instance = context.instance if _has_instance(context) else None
        partition = context.asset_partition_key if context.has_asset_partitions else None
        expected = recorded_sha256(instance, context.asset_key, partition)
        if expected is None:
            # Nothing to check the file against: another instance's run wrote it, or none did.
            self.blob_store.read_bytes(key)  # no such file at all: FileNotFoundError, as with a record
            raise UntrustedModelError(
                f"{self.blob_store.uri(key)}: this Dagster instance has no recorded sha256 for "
                f"{context.asset_key.to_user_string()}, so the file cannot be checked; not loaded. Load it with "
                "the instance of the run that wrote it (DAGSTER_HOME, or instance=DagsterInstance.get())"
            )
        data = read_verified_bytes(self.blob_store, key, expected, "Dagster recorded, when it was written, sha256")
        return loads_model(data, self.blob_store.uri(key))


def _has_instance(context: dg.InputContext) -> bool:
    try:
        return context.instance is not None
    except dg.DagsterInvariantViolationError:
        return False

"""Rolling the production champion back (or forward) to a version already in the blob store."""

import dagster as dg
from pydantic import Field

from skinseg_assets.assets.serving import history_metadata, load_verified_champion, promoted_at_metadata
from skinseg_assets.resources.blob_store import BlobStore, uri_metadata
from skinseg_assets.resources.champion_store import ChampionStore, version_name
from skinseg_assets.resources.model_io_manager import UntrustedModelError
from skinseg_assets.resources.warehouse import CHAMPION_HISTORY, Warehouse


class RollbackConfig(dg.Config):
    version: int = Field(ge=1, description="Champion version to serve again, e.g. 2 for champions/v0002")
    reason: str = Field(default="", description="Why, for the promotion history (optional)")


@dg.op(
    description="Point champions/current.json at an earlier version, after checking its integrity.",
    out=dg.Out(dg.Nothing),
)
def rollback_champion(
    context: dg.OpExecutionContext, config: RollbackConfig, blob_store: BlobStore, warehouse: Warehouse
):
    store = ChampionStore(blob_store)
    target = store.manifest(config.version)
    # Refuse a version whose file no longer matches what was promoted, before it can serve.
    load_verified_champion(store, warehouse, target)
    try:
        previous = store.pointer()
        was = version_name(previous.version) if previous else "no champion"
    except UntrustedModelError as error:
        # A damaged pointer serves nothing; a rollback is how it is repaired (the run records what it replaced).
        context.log.warning(str(error))
        previous, was = None, "an unreadable champions/current.json"
    if previous is not None and previous.version == target.version:
        if previous.sha256 == target.sha256:
            # Recording a rollback that changes nothing would only put a false row in the history.
            others = ", ".join(version_name(v) for v in store.versions() if v != target.version) or "none yet"
            raise dg.Failure(f"{target.name} already serves: nothing to roll back (other versions: {others})")
        # It names this version with a sha256 its manifest does not have, so it serves nothing: repaired here.
        was = f"a champions/current.json naming {target.name} with another sha256"
        context.log.warning(f"{was} ({previous.sha256})")
    reason = f"rolled back from {was} to {target.name}"
    if config.reason:
        reason += f": {config.reason}"
    store.point_to(target, action="rolled_back", reason=reason, run_id=context.run_id)
    warehouse.record_champion_decision(run_id=context.run_id, action="rolled_back", champion=target, reason=reason)
    context.log.info(reason)
    yield dg.AssetMaterialization(
        asset_key="production_skin_classifier",
        description=reason,
        metadata={
            "Decision": "rolled_back",
            "Reason": reason,
            "Champion version": target.name,
            "Champion sha256": target.sha256,
            "Champion promoted at": promoted_at_metadata(target),
            "Model": uri_metadata(blob_store.uri(target.model_key)),
            "Promotion history": history_metadata(warehouse),
            "History table": warehouse.table_name(CHAMPION_HISTORY),
        },
    )

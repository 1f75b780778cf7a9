"""The serving champion, as the prediction service and the CLI use it.

`ChampionSource` follows `champions/current.json`: each `get()` re-reads the pointer when the
last read is older than `ttl_seconds`, and loads the new version when it changed, so a newly
promoted (or rolled back) champion serves without a restart. While the champion has no lookup
table, each re-read also looks for one, so a table `serving_job` compiles later is picked up too.
Every load is integrity-checked by `ChampionStore` (sha256 of the model file against its manifest
and the pointer, trusted skops types only); a model that fails is refused, never served.
"""

import logging
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from skinseg_assets.pixels.images import decode_rgb, encode_png, overlay, skin_share
from skinseg_assets.pixels.lut import segment_rgb, segment_rgb_with_model
from skinseg_assets.pixels.model import skin_decision, skin_probability_of_colours
from skinseg_assets.resources.blob_store import BlobStore
from skinseg_assets.resources.champion_store import ChampionManifest, ChampionNotFoundError, ChampionStore, LutManifest
from skinseg_assets.resources.model_io_manager import UntrustedModelError

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 5.0
# How long the service and the CLI retry a failing read of a GCS store before they answer that it
# is unavailable (503, exit 1), instead of the client library's two minutes: a request, or a
# health probe, made while no champion is loaded waits at most this long.
STORE_READ_RETRY_SECONDS = 10.0


def blob_store_from_environment() -> BlobStore:
    """The deployment's blob store as the Dagster code location configures it, except that a failing
    read gives up after STORE_READ_RETRY_SECONDS."""
    import dagster as dg

    from skinseg_assets import settings
    from skinseg_assets.resources import build_blob_store

    try:
        if settings.deployment() == "gcs":
            settings.gcs_bucket()
    except ValueError as error:  # a settings mistake: said plainly (503, exit 1), not a 500
        raise ChampionUnavailableError(f"cannot open the blob store: {error}") from None
    with dg.build_resources({"blob_store": build_blob_store(read_retry_seconds=STORE_READ_RETRY_SECONDS)}) as resources:
        return resources.blob_store


@dataclass(frozen=True)
class ServingModel:
    """A loaded champion version: the model, and its lookup table (packed bits) if one was compiled."""

    manifest: ChampionManifest
    model: object
    lut: np.ndarray | None
    lut_manifest: LutManifest | None = None  # the table last found: served, or refused (not tried again)

    @property
    def version(self) -> int:
        return self.manifest.version

    def predict(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is_skin, P(skin)) for an (N, 3) array of B, G, R colours, from the model itself."""
        probability = skin_probability_of_colours(self.model, bgr)
        return skin_decision(probability), probability

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Skin mask of an RGB image: by the lookup table, or by the model on its distinct colours."""
        if self.lut is not None:
            return segment_rgb(self.lut, image)
        return segment_rgb_with_model(self.model, image)

    @property
    def scorer(self) -> str:
        return "lookup-table" if self.lut is not None else "model"


def load_serving_lut(store: ChampionStore, manifest: ChampionManifest, lut: LutManifest | None) -> np.ndarray | None:
    """The table `lut` describes (packed bits), if any; one that fails its checks (altered, gone, or
    written in an older format) is refused, logged, and the model segments instead."""
    if lut is None:
        return None
    try:
        return store.verified_lut(manifest, lut, packed=True)
    except (UntrustedModelError, ValueError) as error:
        log.warning("lookup table refused, segmenting with the model instead: %s", error)
        return None


def load_serving_model(store: ChampionStore, manifest: ChampionManifest) -> ServingModel:
    model = store.load_model(manifest)
    try:
        lut = store.lut_manifest(manifest)
    except UntrustedModelError as error:  # an unreadable table manifest
        log.warning("lookup table refused, segmenting with the model instead: %s", error)
        lut = None
    return ServingModel(manifest=manifest, model=model, lut=load_serving_lut(store, manifest, lut), lut_manifest=lut)


class ChampionUnavailableError(RuntimeError):
    """The blob store could not be read, and no champion is loaded to serve meanwhile."""


# What `ChampionSource.get` raises when there is no champion it may serve: the service answers 503,
# the CLI exits 1.
NO_SERVABLE_CHAMPION = (ChampionNotFoundError, UntrustedModelError, ChampionUnavailableError)


class ChampionSource:
    """The serving champion, reloaded when `champions/current.json` names another version."""

    def __init__(self, store: ChampionStore, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock=time.monotonic):
        self.store = store
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._serving: ServingModel | None = None
        self._refusal: Exception | None = None  # why nothing serves, after a look found nothing servable
        self._checked_at: float | None = None

    def get(self) -> ServingModel:
        """The current champion; raises ChampionNotFoundError, UntrustedModelError or ChampionUnavailableError.

        One request at a time looks at the pointer. Once a champion is loaded, no request waits
        for that look (the GCS client retries a slow or failing read for up to two minutes): it gets
        the loaded champion. When the blob store cannot be read (an OSError: network, GCS or disk),
        the loaded champion keeps serving until the next look; with none loaded yet,
        ChampionUnavailableError says why. When the pointer names no servable champion (none, or a
        changed or missing file), nothing serves, not even the champion loaded before, and requests
        get that refusal without another look until a TTL has passed."""
        serving = self._serving
        if serving is not None and (self._fresh() or not self._lock.acquire(blocking=False)):
            return serving  # checked recently, or another request is looking now
        if serving is None:
            self._lock.acquire()
        try:
            if self._fresh():  # another request looked while this one waited
                if self._serving is not None:
                    return self._serving
                if self._refusal is not None:
                    raise self._refusal.with_traceback(None)
            try:
                served = self._look()
                self._refusal = None
                return served
            except (ChampionNotFoundError, UntrustedModelError) as refusal:
                self._serving, self._refusal, self._checked_at = None, refusal, self._clock()
                raise
            except OSError as error:  # BlobStore.read_bytes' "cannot read the store"
                if self._serving is None:
                    raise ChampionUnavailableError(f"cannot read the champion from the blob store: {error}") from error
                log.warning(
                    "cannot read the champion pointer (%s); %s, loaded and checked earlier, serves until the next look",
                    error,
                    self._serving.manifest.name,
                )
                # The next look is a TTL after this one ended: a failing look may take ~10 s.
                self._checked_at = self._clock()
                return self._serving
        finally:
            self._lock.release()

    def _fresh(self) -> bool:
        return self._checked_at is not None and self._clock() - self._checked_at < self.ttl_seconds

    def _look(self) -> ServingModel:
        """Read the pointer; load the champion it names if it is another one, or its new table."""
        manifest = self.store.current()
        if manifest is None:
            raise ChampionNotFoundError("no champion has been promoted yet: run training_job")
        if self._serving is None or (manifest.version, manifest.sha256) != (
            self._serving.manifest.version,
            self._serving.manifest.sha256,
        ):
            self._serving = load_serving_model(self.store, manifest)
            log.info("serving champion %s (%s scorer)", manifest.name, self._serving.scorer)
        elif self._serving.lut is None:
            self._take_a_newly_compiled_table()
        self._checked_at = self._clock()
        return self._serving

    def _take_a_newly_compiled_table(self) -> None:
        """Serve the champion's table if one was compiled (or replaced) since it was last looked for."""
        serving = self._serving
        try:
            found = self.store.lut_manifest(serving.manifest)
        except UntrustedModelError:
            return  # unreadable: looked at again at the next re-read
        if found is None or found == serving.lut_manifest:
            return  # none yet, or the one already served or refused
        self._serving = replace(serving, lut=load_serving_lut(self.store, serving.manifest, found), lut_manifest=found)
        if self._serving.lut is not None:
            log.info("serving champion %s with its newly compiled lookup table", serving.manifest.name)


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray
    image: np.ndarray

    @property
    def skin_share(self) -> float:
        return skin_share(self.mask)

    def mask_png(self) -> bytes:
        return encode_png(self.mask)

    def overlay_png(self) -> bytes:
        return encode_png(overlay(self.image, self.mask))


def segment_image_bytes(serving: ServingModel, data: bytes, max_pixels: int) -> Segmentation:
    """Decode an uploaded image (RGB) and segment it; raises `images.ImageError` for bad input."""
    image = decode_rgb(data, max_pixels=max_pixels)
    return Segmentation(mask=serving.segment(image), image=image)

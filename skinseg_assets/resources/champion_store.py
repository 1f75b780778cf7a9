"""Champion versions in the blob store: model files, manifests, the serving pointer, lookup tables.

    champions/v0003/model.skops                the promoted model (skops, never pickle)
    champions/v0003/manifest.json              sha256, test metrics, training data identity, code version, time
    champions/current.json                     the serving version; written last, so it never names a half-written one
    lookup_tables/v0003/skin_color_lut.npz     that version compiled into a 256**3 colour table
    lookup_tables/v0003/manifest.json          the table's sha256 and the champion sha256 it was compiled from

Versions are never rewritten: a promotion adds one, a rollback moves the pointer. Every load
checks integrity before a byte is deserialized: the model file's sha256 must equal its
manifest's, the pointer's and (where the caller has it) the promotion history's, and the skops
file may hold only trusted types (`model_io_manager.loads_model`).
"""

import json
import re
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from skinseg_assets.pixels.lut import CompiledLut, lut_from_bytes, lut_to_bytes
from skinseg_assets.pixels.model import SKIN_DECISION_RULE, SKIN_THRESHOLD
from skinseg_assets.resources.blob_store import BlobStore, VersionConflictError
from skinseg_assets.resources.model_io_manager import UntrustedModelError, loads_model, read_verified_bytes, sha256_of

CHAMPIONS = "champions"
CURRENT_KEY = f"{CHAMPIONS}/current.json"
LOOKUP_TABLES = "lookup_tables"
_MANIFEST = re.compile(rf"^{CHAMPIONS}/v(\d+)/manifest\.json$")


class ChampionChangedError(RuntimeError):
    """The champion pointer moved between reading it and replacing it."""


class ChampionNotFoundError(LookupError):
    """No champion has been promoted yet, or the requested version does not exist."""


def version_name(version: int) -> str:
    return f"v{version:04d}"


def manifest_key(version: int) -> str:
    """Where a champion version's manifest is stored."""
    return f"{CHAMPIONS}/{version_name(version)}/manifest.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version() -> dict:
    """The skinseg package version and, when run from a git checkout, its commit."""
    checkout = Path(__file__).resolve().parents[2]
    try:
        package = metadata.version("skinseg")
    except metadata.PackageNotFoundError:
        package = _version_in_pyproject(checkout / "pyproject.toml")
    commit = None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0:
            commit = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"package": "skinseg", "version": package, "git_commit": commit}


def _version_in_pyproject(path: Path) -> str:
    import tomllib

    try:
        return tomllib.loads(path.read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


class JsonRecord:
    """A dataclass stored as a JSON file in the blob store."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, uri: str):
        """The record stored at `uri`; a file that is not one is refused, naming it.

        Fields this release does not know (written by a newer one) are ignored, so that an older
        service replica or pipeline keeps reading what a newer one wrote."""
        try:
            record = json.loads(data)
            known = {known_field.name for known_field in fields(cls)}
            return cls(**{name: value for name, value in record.items() if name in known})
        except (ValueError, TypeError, AttributeError) as error:  # not JSON, not an object, or fields missing
            raise UntrustedModelError(f"{uri} is not a readable {cls.__name__} ({error}); not used") from None


@dataclass(frozen=True)
class ChampionManifest(JsonRecord):
    """Everything recorded about one promoted model."""

    version: int
    model_key: str
    sha256: str
    size_bytes: int
    estimator: str
    test_metrics: dict
    training_data: dict
    test_data: dict
    code_version: dict
    promoted_at: str
    reason: str
    run_id: str | None = None
    parameters: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return version_name(self.version)


@dataclass(frozen=True)
class ChampionPointer(JsonRecord):
    """`champions/current.json`: which version serves, and how it came to."""

    version: int
    sha256: str
    manifest_key: str
    action: str  # "promoted" or "rolled_back"
    reason: str
    updated_at: str
    run_id: str | None = None


@dataclass(frozen=True)
class LutManifest(JsonRecord):
    """`lookup_tables/vNNNN/manifest.json`: a compiled table and the champion it came from."""

    champion_version: int
    champion_sha256: str
    lut_key: str
    sha256: str
    size_bytes: int
    skin_colours: int
    compile_seconds: float
    compiled_at: str
    index: str = "B << 16 | G << 8 | R"
    threshold: float = SKIN_THRESHOLD
    # Skin when P(skin) <decision> threshold. Tables compiled before it was recorded used ">=".
    decision: str = ">="
    format: str = "npz: np.packbits(bool[256, 256, 256] table, bitorder='little') as is_skin_bits_little_endian"


class ChampionStore:
    """Champion versions and their lookup tables, in any `BlobStore` (local folder or GCS)."""

    def __init__(self, blob_store: BlobStore):
        self.blob_store = blob_store
        # The pointer's version when this store last read it: the champion its caller decided
        # against. A promotion or rollback replaces that version only (`point_to`).
        self._pointer_version: str | None = None

    # Versions and the pointer

    def versions(self) -> list[int]:
        matches = (_MANIFEST.match(key) for key in self.blob_store.list_keys(f"{CHAMPIONS}/"))
        return sorted(int(match.group(1)) for match in matches if match)

    def _record(self, record_type: type[JsonRecord], key: str):
        """The record stored at `key`, or None if there is none (one read, no separate existence check)."""
        try:
            data = self.blob_store.read_bytes(key)
        except FileNotFoundError:
            return None
        return record_type.from_json(data, self.blob_store.uri(key))

    def pointer(self) -> ChampionPointer | None:
        data, self._pointer_version = self.blob_store.read_versioned(CURRENT_KEY)
        return None if data is None else ChampionPointer.from_json(data, self.blob_store.uri(CURRENT_KEY))

    def manifest(self, version: int) -> ChampionManifest:
        manifest = self._record(ChampionManifest, manifest_key(version))
        if manifest is None:
            known = ", ".join(version_name(v) for v in self.versions()) or "none"
            raise ChampionNotFoundError(f"champion version {version_name(version)} does not exist (versions: {known})")
        return manifest

    def current(self) -> ChampionManifest | None:
        """The serving version's manifest (None before the first promotion).

        A missing pointer while versions are stored is not "no champion yet": taken as such, the
        next training run would promote without comparing against any of them.
        """
        pointer = self.pointer()
        if pointer is None:
            stored = self.versions()
            if stored:
                raise ChampionNotFoundError(
                    f"{self.blob_store.uri(CURRENT_KEY)} is missing, but champion versions "
                    f"{', '.join(version_name(v) for v in stored)} are stored: the pointer was removed outside "
                    "skinseg (or the first promotion is still being written). Nothing serves and nothing is "
                    "promoted until it names one: run rollback_champion_job with the version to serve"
                )
            return None
        manifest = self.manifest(pointer.version)
        if manifest.sha256 != pointer.sha256:
            raise UntrustedModelError(
                f"{self.blob_store.uri(CURRENT_KEY)} names {version_name(pointer.version)} with sha256 "
                f"{pointer.sha256}, but its manifest records {manifest.sha256}: changed outside skinseg; not loaded"
            )
        return manifest

    def store_version(self, model_bytes: bytes, **fields) -> ChampionManifest:
        """Store a new version (model, then manifest); it serves once `point_to` names it.

        `fields` are the remaining `ChampionManifest` fields (estimator, test_metrics, ...).
        The number is the next free one: the model file is created only if its name is not taken
        (atomically, in a folder and in GCS alike), so two promotions at the same moment get two
        numbers. The pointer then names the first to finish: the other finds the pointer changed
        since it read it (`point_to`), and its version is stored but does not serve.
        """
        existing = self.versions()
        version = (existing[-1] if existing else 0) + 1
        promoted_at = fields.pop("promoted_at", None) or utc_now()
        while True:
            prefix = f"{CHAMPIONS}/{version_name(version)}"
            try:
                self.blob_store.create_bytes(f"{prefix}/model.skops", model_bytes)
                break
            except FileExistsError:
                version += 1  # claimed by another promotion whose manifest is not written yet
        manifest = ChampionManifest(
            version=version,
            model_key=f"{prefix}/model.skops",
            sha256=sha256_of(model_bytes),
            size_bytes=len(model_bytes),
            promoted_at=promoted_at,
            **fields,
        )
        self.blob_store.write_bytes(manifest_key(version), manifest.to_json(), content_type="application/json")
        return manifest

    def point_to(self, manifest: ChampionManifest, action: str, reason: str, run_id: str | None = None) -> ChampionPointer:
        """Point current.json at `manifest`, if it still names what this store last read (the
        champion the caller decided against); ChampionChangedError if another promotion or rollback
        moved it since."""
        if self._pointer_version is None:
            self.pointer()
        pointer = ChampionPointer(
            version=manifest.version,
            sha256=manifest.sha256,
            manifest_key=manifest_key(manifest.version),
            action=action,
            reason=reason,
            updated_at=utc_now(),
            run_id=run_id,
        )
        try:
            self._pointer_version = self.blob_store.replace_bytes(
                CURRENT_KEY, pointer.to_json(), self._pointer_version, content_type="application/json"
            )
        except VersionConflictError:
            self._pointer_version = None
            raise ChampionChangedError(
                f"{self.blob_store.uri(CURRENT_KEY)} changed since this run read it (another promotion or rollback): "
                f"{manifest.name} is stored but does not serve; run again to decide against the champion that serves now"
            ) from None
        return pointer

    # Models, checked before loading

    def model_bytes(self, manifest: ChampionManifest, expected_sha256: str | None = None) -> bytes:
        """The model file of a version, refused if its sha256 differs from the manifest (or `expected_sha256`)."""
        uri = self.blob_store.uri(manifest.model_key)
        if expected_sha256 is not None and expected_sha256 != manifest.sha256:
            raise UntrustedModelError(
                f"{manifest.name}'s manifest records sha256 {manifest.sha256}, but the promotion history "
                f"records {expected_sha256}: the manifest was changed outside skinseg; {uri} not loaded"
            )
        return read_verified_bytes(
            self.blob_store, manifest.model_key, manifest.sha256, f"{manifest.name} was promoted with sha256"
        )

    def load_model(self, manifest: ChampionManifest, expected_sha256: str | None = None):
        """The fitted model of a version: integrity checked, then loaded with trusted types only."""
        data = self.model_bytes(manifest, expected_sha256)
        return loads_model(data, self.blob_store.uri(manifest.model_key))

    # Lookup tables

    def lut_key(self, manifest: ChampionManifest) -> str:
        return f"{LOOKUP_TABLES}/{manifest.name}/skin_color_lut.npz"

    def lut_manifest_key(self, manifest: ChampionManifest) -> str:
        return f"{LOOKUP_TABLES}/{manifest.name}/manifest.json"

    def save_lut(self, champion: ChampionManifest, compiled: CompiledLut) -> LutManifest:
        data = lut_to_bytes(compiled.table)
        lut = LutManifest(
            champion_version=champion.version,
            champion_sha256=champion.sha256,
            lut_key=self.lut_key(champion),
            sha256=sha256_of(data),
            size_bytes=len(data),
            skin_colours=compiled.skin_colours,
            compile_seconds=round(compiled.compile_seconds, 3),
            compiled_at=utc_now(),
            decision=SKIN_DECISION_RULE,
        )
        self.blob_store.write_bytes(lut.lut_key, data)
        self.blob_store.write_bytes(self.lut_manifest_key(champion), lut.to_json(), content_type="application/json")
        return lut

    def lut_manifest(self, champion: ChampionManifest) -> LutManifest | None:
        return self._record(LutManifest, self.lut_manifest_key(champion))

    def load_lut(self, champion: ChampionManifest, packed: bool = False) -> np.ndarray | None:
        """The champion's table, bool or packed bits (None if not compiled yet); refused if it does not match."""
        verified = self.load_lut_with_manifest(champion, packed)
        return None if verified is None else verified[1]

    def load_lut_with_manifest(self, champion: ChampionManifest, packed: bool = False) -> tuple[LutManifest, np.ndarray] | None:
        """`load_lut`, with the table's manifest (read once)."""
        lut = self.lut_manifest(champion)
        return None if lut is None else (lut, self.verified_lut(champion, lut, packed))

    def verified_lut(self, champion: ChampionManifest, lut: LutManifest, packed: bool = False) -> np.ndarray:
        """The table `lut` describes, refused unless it was compiled from `champion` and is unchanged."""
        uri = self.blob_store.uri(lut.lut_key)
        if lut.champion_sha256 != champion.sha256:
            raise UntrustedModelError(
                f"{uri} was compiled from a model with sha256 {lut.champion_sha256}, not {champion.name} "
                f"({champion.sha256}); not loaded"
            )
        if (lut.decision, lut.threshold) != (SKIN_DECISION_RULE, SKIN_THRESHOLD):
            raise UntrustedModelError(
                f"{uri} calls a colour skin when P(skin) {lut.decision} {lut.threshold}, not when P(skin) "
                f"{SKIN_DECISION_RULE} {SKIN_THRESHOLD} as the model's decisions do: compile it again (serving_job); not loaded"
            )
        data = read_verified_bytes(self.blob_store, lut.lut_key, lut.sha256, "it was written with sha256")
        return lut_from_bytes(data, packed=packed)

import dataclasses
import io
import struct
import time
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from skinseg_assets.pixels.images import overlay
from skinseg_assets.pixels.lut import lut_is_skin, segment_rgb
from skinseg_assets.pixels.model import skin_probability_of_colours
from skinseg_assets.resources.blob_store import GCSBlobStore, LazyGCSResource
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets.service import app as service_app
from skinseg_assets.service import scoring
from skinseg_assets.service.app import MAX_BODY_BYTES, MAX_PIXELS_PER_REQUEST, create_app
from skinseg_assets.service.scoring import ChampionSource
from skinseg_assets_tests.champion_fixtures import publish, tree_and_lut
from skinseg_assets_tests.helpers import gcs_in_an_outage

SKIN, NOT_SKIN = {"B": 74, "G": 85, "R": 123}, {"B": 250, "G": 250, "R": 250}


def client_for(store: ChampionStore, **source) -> TestClient:
    return TestClient(create_app(ChampionSource(store, **{"ttl_seconds": 0, **source})))


@pytest.fixture
def client(champions) -> TestClient:
    return client_for(champions)


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_names_the_champion_from_the_blob_store(client, champions):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model_version"] == 1
    assert body["model_sha256"] == champions.current().sha256
    assert body["estimator"] == "DecisionTreeClassifier" and body["segment_scorer"] == "lookup-table"


def test_predict_returns_labels_and_probabilities_in_request_order(client):
    response = client.post("/predict", json={"pixels": [SKIN, NOT_SKIN, SKIN]})
    assert response.status_code == 200
    body = response.json()
    tree, _ = tree_and_lut(3)
    expected = skin_probability_of_colours(tree, np.array([[74, 85, 123], [250, 250, 250], [74, 85, 123]]))
    assert body["model_version"] == 1
    assert body["labels"] == ["skin", "non-skin", "skin"]
    assert body["skin_probability"] == pytest.approx(expected.tolist(), abs=1e-6)


@pytest.mark.parametrize(
    ("pixels", "location", "message"),
    [
        ([{"B": 1, "G": 2, "R": 256}], ["body", "pixels", 0, "R"], "less than or equal to 255"),
        ([SKIN, {"B": -1, "G": 2, "R": 3}], ["body", "pixels", 1, "B"], "greater than or equal to 0"),
        ([{"B": "12", "G": 2, "R": 3}], ["body", "pixels", 0, "B"], "valid integer"),
        ([{"B": 1.5, "G": 2, "R": 3}], ["body", "pixels", 0, "B"], "valid integer"),
        ([{"B": True, "G": 2, "R": 3}], ["body", "pixels", 0, "B"], "valid integer"),
        ([{"B": 1, "G": 2}], ["body", "pixels", 0, "R"], "Field required"),
        ([{"B": 1, "G": 2, "R": 3, "label": 1}], ["body", "pixels", 0, "label"], "Extra inputs"),
        ([], ["body", "pixels"], "at least 1 item"),
        ("74,85,123", ["body", "pixels"], "valid list"),
    ],
)
def test_bad_pixels_are_422_naming_the_field(client, pixels, location, message):
    response = client.post("/predict", json={"pixels": pixels})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(error["loc"] == location and message in error["msg"] for error in errors), errors


@pytest.mark.parametrize("number", ["1e309", "-1e309", "NaN", "Infinity"])
def test_a_number_json_cannot_carry_back_is_422_naming_the_field_not_500(client, number):
    body = '{"pixels": [{"B": %s, "G": 2, "R": 3}]}' % number
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "pixels", 0, "B"] and error["input"] in ("inf", "-inf", "nan")


def test_a_422_lists_the_first_20_invalid_fields_and_counts_the_rest(client):
    response = client.post("/predict", json={"pixels": [{"B": 1, "G": 2, "R": 300}] * 1000})
    assert response.status_code == 422
    body = response.json()
    assert [error["loc"] for error in body["detail"]] == [["body", "pixels", i, "R"] for i in range(20)]
    assert body["errors_not_shown"] == 980


def test_a_list_too_long_is_named_by_its_length_not_echoed(champions):
    client = TestClient(create_app(ChampionSource(champions, ttl_seconds=0), max_pixels_per_request=3))
    [error] = client.post("/predict", json={"pixels": [SKIN] * 5000}).json()["detail"]
    assert error["loc"] == ["body", "pixels"] and error["input"] == "a list of 5000 items"


def test_a_batch_over_the_limit_is_422_naming_pixels(champions):
    client = TestClient(create_app(ChampionSource(champions, ttl_seconds=0), max_pixels_per_request=3))
    assert client.post("/predict", json={"pixels": [SKIN] * 3}).status_code == 200
    response = client.post("/predict", json={"pixels": [SKIN] * 4})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "pixels"] and "at most 3 items" in error["msg"]


def test_the_default_batch_limit_is_published_in_the_schema(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert schema["properties"]["pixels"]["maxItems"] == MAX_PIXELS_PER_REQUEST == 100_000


def test_a_body_over_16_mib_is_413(client):
    json_type = {"content-type": "application/json"}
    assert MAX_BODY_BYTES == 16 * 2**20  # the README's limit
    assert client.post("/predict", content=b" " * (16 * 2**20 + 1), headers=json_type).status_code == 413
    assert client.post("/predict", content=b" " * 16 * 2**20, headers=json_type).status_code == 422  # read, then refused as JSON


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header says it is width x height: its size is known before any decoding."""
    data = bytearray(png(np.zeros((1, 1, 3), np.uint8)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_an_image_over_50_megapixels_is_413_before_it_is_decoded(client):
    over = client.post("/segment", files={"image": ("huge.png", png_claiming(7072, 7071), "image/png")})
    assert over.status_code == 413
    assert "7072x7071 = 50,006,112 pixels; the limit is 50,000,000" in over.json()["detail"]
    under = client.post("/segment", files={"image": ("big.png", png_claiming(7071, 7071), "image/png")})
    assert under.status_code == 422  # within the limit: decoding starts, and finds the pixel data missing


def test_segment_returns_the_mask_of_an_rgb_photo(client):
    from skimage import data

    photo = data.astronaut()
    response = client.post("/segment", files={"image": ("astronaut.png", png(photo), "image/png")})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-skinseg-model-version"] == "1"
    assert response.headers["x-skinseg-scorer"] == "lookup-table"
    mask = np.asarray(Image.open(io.BytesIO(response.content))) > 0
    _, compiled = tree_and_lut(3)
    assert (mask == segment_rgb(compiled.table, photo)).all()
    assert float(response.headers["x-skinseg-skin-share"]) == pytest.approx(mask.mean(), abs=1e-6)

    overlay_response = client.post("/segment?output=overlay", files={"image": ("a.png", png(photo), "image/png")})
    shown = np.asarray(Image.open(io.BytesIO(overlay_response.content)))
    assert shown.shape == photo.shape and shown.dtype == np.uint8
    # The overlay's formula is tested in test_images.py; here: the photo under the mask just found.
    assert (shown == overlay(photo, mask)).all()
    assert not (shown == photo).all()


def test_bad_images_are_rejected_naming_the_field(client, monkeypatch):
    not_an_image = client.post("/segment", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert not_an_image.status_code == 422
    assert not_an_image.json()["detail"][0]["loc"] == ["body", "image"]
    # Pillow reports a malformed PPM header as a ValueError: still "not an image", never a 500.
    bad_header = client.post("/segment", files={"image": ("x.ppm", b"P6\n1x 1\n255\n\x00\x00\x00", "image/x-portable-pixmap")})
    assert bad_header.status_code == 422 and bad_header.json()["detail"][0]["loc"] == ["body", "image"]
    missing = client.post("/segment", data={"picture": "x"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "image"]
    wrong_output = client.post("/segment?output=jpeg", files={"image": ("a.png", png(np.zeros((2, 2, 3), np.uint8)), "image/png")})
    assert wrong_output.status_code == 422 and wrong_output.json()["detail"][0]["loc"] == ["query", "output"]
    monkeypatch.setattr(service_app, "MAX_IMAGE_PIXELS", 99)
    too_large = client.post("/segment", files={"image": ("big.png", png(np.zeros((10, 10, 3), np.uint8)), "image/png")})
    assert too_large.status_code == 413 and "the limit is 99" in too_large.json()["detail"]


def test_no_champion_yet_is_503(data_dir, tmp_path):
    from skinseg_assets.resources.blob_store import LocalBlobStore

    client = client_for(ChampionStore(LocalBlobStore(root=str(tmp_path / "empty"))))
    for response in (client.get("/health"), client.post("/predict", json={"pixels": [SKIN]})):
        assert response.status_code == 503 and "no champion has been promoted yet" in response.json()["detail"]


def test_the_pointer_is_read_again_after_5_seconds_by_default(champions):
    now = [0.0]
    client = TestClient(create_app(ChampionSource(champions, clock=lambda: now[0])))
    assert client.get("/health").json()["model_version"] == 1
    deeper, _ = tree_and_lut(6)
    publish(champions, deeper)
    now[0] = 4.9
    assert client.get("/health").json()["model_version"] == 1
    now[0] = 5.1
    assert client.get("/health").json()["model_version"] == 2


def test_a_new_champion_is_picked_up_without_restart(champions):
    now = [0.0]
    client = client_for(champions, ttl_seconds=30, clock=lambda: now[0])
    assert client.get("/health").json()["model_version"] == 1
    deeper, compiled = tree_and_lut(6)
    champions.save_lut(publish(champions, deeper), compiled)
    assert client.get("/health").json()["model_version"] == 1  # within the TTL: no re-read
    now[0] = 31.0
    assert client.get("/health").json()["model_version"] == 2
    colours = np.array([[74, 85, 123], [30, 140, 200]])
    expected = ["skin" if skin else "non-skin" for skin in lut_is_skin(compiled.table, colours)]
    pixels = [{"B": int(b), "G": int(g), "R": int(r)} for b, g, r in colours]
    assert client.post("/predict", json={"pixels": pixels}).json()["labels"] == expected

    champions.point_to(champions.manifest(1), action="rolled_back", reason="test")
    now[0] = 62.0
    assert client.get("/health").json()["model_version"] == 1


class FaultyStore(ChampionStore):
    """A champion store that runs `fault` (when set) before each read of the pointer: it raises
    what an outage or a bug raises, or holds the read as a slow store would."""

    fault = None

    def pointer(self):
        if self.fault is not None:
            self.fault()
        return super().pointer()


def connection_refused():
    raise ConnectionError("storage.googleapis.com: connection refused")


def test_a_loaded_champion_keeps_serving_while_the_store_cannot_be_read(champions, caplog):
    store = FaultyStore(champions.blob_store)
    now = [0.0]
    client = client_for(store, ttl_seconds=30, clock=lambda: now[0])
    assert client.get("/health").json()["model_version"] == 1
    store.fault = connection_refused
    for tick in (31.0, 32.0, 62.0):  # looked at again once per TTL, not at every request
        now[0] = tick
        response = client.post("/predict", json={"pixels": [SKIN]})
        assert response.status_code == 200 and response.json()["model_version"] == 1
    warnings = [record.getMessage() for record in caplog.records if "cannot read the champion pointer" in record.getMessage()]
    assert len(warnings) == 2 and "connection refused" in warnings[0] and "v0001, loaded and checked earlier" in warnings[0]

    store.fault = None
    deeper, _ = tree_and_lut(6)
    publish(champions, deeper)
    now[0] = 93.0
    assert client.get("/health").json()["model_version"] == 2  # back: the new champion is taken


def test_while_one_request_looks_at_a_slow_store_the_others_are_served_the_loaded_champion(champions):
    import threading

    entered, release = threading.Event(), threading.Event()

    def slow_read():  # a GCS read the client keeps retrying
        entered.set()
        release.wait(10)

    store = FaultyStore(champions.blob_store)
    now = [0.0]
    source = ChampionSource(store, ttl_seconds=30, clock=lambda: now[0])
    loaded = source.get()
    store.fault, now[0] = slow_read, 31.0
    looking = threading.Thread(target=source.get)
    looking.start()
    assert entered.wait(10)
    assert source.get() is loaded
    assert looking.is_alive(), "the request above waited for the look to end"
    release.set()
    looking.join(10)


def test_after_a_slow_failing_look_the_next_requests_do_not_look_again_within_the_ttl(champions):
    """A look during a GCS outage takes ~10 s of retries: the TTL counts from its end, not its start."""
    store = FaultyStore(champions.blob_store)
    now = [0.0]
    looks = []
    client = client_for(store, ttl_seconds=5, clock=lambda: now[0])
    assert client.get("/health").status_code == 200

    def slow_outage():
        looks.append(now[0])
        now[0] += 10.0  # the client library's retries
        connection_refused()

    store.fault = slow_outage
    now[0] = 5.5
    assert client.get("/health").json()["model_version"] == 1
    for _ in range(4):  # 0.5 s apart, as a prober would
        now[0] += 0.5
        assert client.get("/health").json()["model_version"] == 1
    assert looks == [5.5]


def test_an_error_that_is_not_the_store_being_unreachable_is_not_taken_for_an_outage(champions):
    def bug():
        raise TypeError("a bug, not an outage")

    store = FaultyStore(champions.blob_store)
    now = [0.0]
    source = ChampionSource(store, ttl_seconds=30, clock=lambda: now[0])
    source.get()
    store.fault, now[0] = bug, 31.0
    with pytest.raises(TypeError, match="a bug, not an outage"):
        source.get()


def test_with_no_champion_loaded_an_unreadable_store_is_503(champions):
    store = FaultyStore(champions.blob_store)
    store.fault = connection_refused
    response = client_for(store).post("/predict", json={"pixels": [SKIN]})
    assert response.status_code == 503
    assert response.json()["detail"] == "cannot read the champion from the blob store: storage.googleapis.com: connection refused"


def promote_an_altered_model(champions, data_dir) -> None:
    """A deeper tree promoted as v0002, whose model file then changes outside skinseg."""
    deeper, _ = tree_and_lut(6)
    model_file = data_dir / "blobs" / publish(champions, deeper).model_key
    model_file.write_bytes(model_file.read_bytes() + b"!")


def test_a_tampered_champion_is_not_served(champions, data_dir):
    client = client_for(champions)
    promote_an_altered_model(champions, data_dir)
    response = client.get("/health")
    assert response.status_code == 503
    assert "champions/v0002/model.skops has sha256" in response.json()["detail"]
    assert "changed outside skinseg; not loaded" in response.json()["detail"]


def test_once_the_pointer_names_a_tampered_champion_the_loaded_one_stops_serving_too(champions, data_dir, monkeypatch):
    now = [0.0]
    client = client_for(champions, ttl_seconds=30, clock=lambda: now[0])
    assert client.get("/health").json()["model_version"] == 1
    promote_an_altered_model(champions, data_dir)
    loads = []
    load_model = champions.load_model
    monkeypatch.setattr(champions, "load_model", lambda manifest: loads.append(manifest.version) or load_model(manifest))
    now[0] = 31.0
    for tick in (31.0, 40.0, 60.0):  # the refusal stands for a TTL without reading the model again
        now[0] = tick
        response = client.get("/health")
        assert response.status_code == 503 and "v0002/model.skops has sha256" in response.json()["detail"]
    assert loads == [2]
    champions.point_to(champions.manifest(1), action="rolled_back", reason="v0002 was altered")
    now[0] = 62.0
    assert client.get("/health").json()["model_version"] == 1  # a repaired pointer serves again


def test_after_a_refusal_no_request_is_served_the_champion_loaded_before_it(champions, data_dir):
    import threading

    store = FaultyStore(champions.blob_store)
    now = [0.0]
    source = ChampionSource(store, ttl_seconds=30, clock=lambda: now[0])
    assert source.get().version == 1
    promote_an_altered_model(champions, data_dir)
    now[0] = 31.0
    with pytest.raises(scoring.UntrustedModelError):
        source.get()
    # The next look is slow; a request meanwhile waits for it rather than getting v0001.
    entered, release = threading.Event(), threading.Event()
    store.fault, now[0] = lambda: (entered.set(), release.wait(10)), 62.0
    answers = []

    def request():
        try:
            answers.append(source.get().version)
        except scoring.UntrustedModelError:
            answers.append("refused")

    looking = threading.Thread(target=request)
    looking.start()
    assert entered.wait(10)
    waiting = threading.Thread(target=request)
    waiting.start()
    waiting.join(0.5)
    assert answers == [] and waiting.is_alive(), f"served {answers} while the look was on"
    release.set()
    looking.join(10)
    waiting.join(10)
    assert answers == ["refused", "refused"]


def test_without_a_lookup_table_the_model_segments(champions):
    deeper, compiled = tree_and_lut(6)
    publish(champions, deeper)  # no table compiled for v0002 yet
    client = client_for(champions)
    assert client.get("/health").json()["segment_scorer"] == "model"
    photo = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    response = client.post("/segment", files={"image": ("noise.png", png(photo), "image/png")})
    assert response.headers["x-skinseg-scorer"] == "model"
    assert ((np.asarray(Image.open(io.BytesIO(response.content))) > 0) == segment_rgb(compiled.table, photo)).all()


def test_a_lookup_table_compiled_after_the_champion_was_loaded_is_picked_up(champions):
    now = [0.0]
    client = client_for(champions, ttl_seconds=30, clock=lambda: now[0])
    deeper, compiled = tree_and_lut(6)
    champion = publish(champions, deeper)  # promoted; serving_job has not compiled its table yet
    assert client.get("/health").json()["segment_scorer"] == "model"
    champions.save_lut(champion, compiled)  # serving_job runs
    now[0] = 31.0
    body = client.get("/health").json()
    assert (body["model_version"], body["segment_scorer"]) == (2, "lookup-table")
    photo = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    response = client.post("/segment", files={"image": ("noise.png", png(photo), "image/png")})
    assert response.headers["x-skinseg-scorer"] == "lookup-table"
    assert ((np.asarray(Image.open(io.BytesIO(response.content))) > 0) == segment_rgb(compiled.table, photo)).all()


def test_a_refused_lookup_table_is_reported_once_and_taken_when_compiled_again(champions, data_dir, caplog):
    now = [0.0]
    client = client_for(champions, ttl_seconds=30, clock=lambda: now[0])
    deeper, compiled = tree_and_lut(6)
    champion = publish(champions, deeper)
    client.get("/health")
    lut = champions.save_lut(champion, compiled)
    table = data_dir / "blobs" / lut.lut_key
    table.write_bytes(table.read_bytes() + b"!")  # altered after it was written
    for tick in (31.0, 62.0, 93.0):
        now[0] = tick
        assert client.get("/health").json()["segment_scorer"] == "model"
    refusals = [record for record in caplog.records if "lookup table refused" in record.getMessage()]
    assert len(refusals) == 1 and "changed outside skinseg" in refusals[0].getMessage()
    recompiled = dataclasses.replace(compiled, compile_seconds=compiled.compile_seconds + 1)
    champions.save_lut(champion, recompiled)  # serving_job compiles it again: a new manifest
    now[0] = 124.0
    assert client.get("/health").json()["segment_scorer"] == "lookup-table"


def test_a_missing_table_file_falls_back_to_the_model_and_a_missing_model_file_is_503(champions, data_dir):
    lut = champions.lut_manifest(champions.current())
    (data_dir / "blobs" / lut.lut_key).unlink()
    body = client_for(champions).get("/health").json()
    assert (body["status"], body["segment_scorer"]) == ("ok", "model")
    (data_dir / "blobs" / champions.current().model_key).unlink()
    response = client_for(champions).get("/health")
    assert response.status_code == 503 and "model.skops is missing, but v0001 was promoted with sha256" in response.json()["detail"]


def test_the_default_app_follows_the_deployments_gcs_bucket(gcs_bucket, data_dir, monkeypatch):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    store = ChampionStore(GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=gcs_bucket, prefix="skinseg"))
    tree, _ = tree_and_lut(3)
    champion = publish(store, tree)
    body = TestClient(create_app()).get("/health").json()
    assert body["model_version"] == 1 and body["model_sha256"] == champion.sha256


def test_the_service_gives_up_on_an_unreadable_gcs_store_after_10_seconds_not_the_client_librarys_120(monkeypatch):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    monkeypatch.setenv("SKINSEG_GCS_BUCKET", "models-bucket")
    store = scoring.blob_store_from_environment()
    assert isinstance(store, GCSBlobStore) and store.read_retry_seconds == scoring.STORE_READ_RETRY_SECONDS == 10


def test_a_health_probe_during_a_gcs_outage_before_any_champion_loaded_is_503_once_the_retries_run_out(monkeypatch):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    monkeypatch.setenv("SKINSEG_GCS_BUCKET", "models-bucket")
    monkeypatch.setattr(scoring, "STORE_READ_RETRY_SECONDS", 2.0)  # 10 s in service; shorter here
    with gcs_in_an_outage() as (endpoint, answered):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        response = TestClient(create_app()).get("/health")
    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "cannot read the champion from the blob store: cannot read gs://models-bucket/skinseg/champions/current.json: "
        "Timeout of 2.0s exceeded"  # the service's own deadline (as patched), not the library's 120 s
    )
    assert len(answered) >= 2, f"retried before giving up: {answered}"


def test_concurrent_first_requests_make_one_champion_source(champions, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    opened = []

    def slow_blob_store():  # as slow as a bucket to reach, so the first requests overlap
        opened.append(1)
        time.sleep(0.2)
        return champions.blob_store

    monkeypatch.setattr(service_app, "blob_store_from_environment", slow_blob_store)
    with TestClient(create_app()) as client, ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: client.get("/health").status_code, range(4)))
    assert statuses == [200] * 4 and len(opened) == 1


@pytest.mark.parametrize("bucket", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_a_gcs_deployment_without_a_bucket_is_a_503_naming_the_setting_not_a_500(monkeypatch, bucket):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    if bucket is None:
        monkeypatch.delenv("SKINSEG_GCS_BUCKET", raising=False)
    else:
        monkeypatch.setenv("SKINSEG_GCS_BUCKET", bucket)
    client = TestClient(create_app())
    for _ in range(2):  # and again on the next request, not a source stuck half made
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["detail"] == (
            "cannot open the blob store: SKINSEG_GCS_BUCKET is not set: SKINSEG_DEPLOYMENT=gcs keeps models in that bucket"
        )

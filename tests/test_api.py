"""The HTTP API (routes on a bare FastAPI app, through Starlette's test client) and the dynamic batcher."""

from __future__ import annotations

import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from chromafuse import Colorizer
from chromafuse.inference.batcher import DynamicBatcher, QueueFull

fastapi = pytest.importorskip("fastapi", reason='the web extra is not installed (pip install "chromafuse[web]")')
pytest.importorskip("filetype", reason='the web extra is not installed (pip install "chromafuse[web]")')
from fastapi.testclient import TestClient  # noqa: E402

from chromafuse.serve.api import api_router  # noqa: E402
from chromafuse.serve.limits import ServeLimits  # noqa: E402


@pytest.fixture(scope="module")
def colorizer(tiny_checkpoint):
    return Colorizer.load(tiny_checkpoint, device="cpu", precision="fp32", backend="torch")


def _client(colorizer, limits=ServeLimits(), **batching):
    batcher = DynamicBatcher(colorizer, **batching)
    app = fastapi.FastAPI()
    app.include_router(api_router(colorizer, batcher, limits))
    return TestClient(app), batcher


def _jpeg(gray: np.ndarray, quality: int = 92) -> bytes:
    ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


GRAY = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)[::4, ::4][:100, :120]  # 100 x 120


def test_batcher_puts_concurrent_requests_into_one_forward_pass(colorizer):
    smalls = np.random.default_rng(0).uniform(0, 100, (4, colorizer.size, colorizer.size)).astype(np.float32)
    batcher = DynamicBatcher(colorizer, max_batch=4, max_wait_ms=5000)
    try:
        futures = [batcher.submit(small) for small in smalls]
        results = [f.result(timeout=30) for f in futures]
    finally:
        batcher.close()
    assert batcher.stats.batches == 1 and batcher.stats.largest_batch == 4  # filled before the 5 s wait ran out
    for small, ab in zip(smalls, results):
        np.testing.assert_allclose(ab, colorizer.predict_ab(small[None])[0], atol=1e-3)


def test_batcher_refuses_at_once_when_its_queue_is_full_and_applies_each_gain(colorizer):
    small = np.full((colorizer.size, colorizer.size), 50.0, np.float32)
    batcher = DynamicBatcher(colorizer, max_batch=8, max_wait_ms=10_000, max_queue=2)
    try:
        first, doubled = batcher.submit(small, saturation=1.0), batcher.submit(small, saturation=2.0)
        with pytest.raises(QueueFull):
            batcher.submit(small)
    finally:
        batcher.close()  # closing runs what is queued
    np.testing.assert_allclose(doubled.result(timeout=30), 2 * first.result(timeout=30), atol=1e-4)
    assert batcher.stats.refused == 1


def test_one_at_a_time_is_batches_of_one(colorizer):
    small = np.full((colorizer.size, colorizer.size), 40.0, np.float32)
    batcher = DynamicBatcher(colorizer, max_batch=1)
    try:
        [f.result(timeout=30) for f in [batcher.submit(small) for _ in range(3)]]
    finally:
        batcher.close()
    assert (batcher.stats.batches, batcher.stats.largest_batch) == (3, 1)


def test_colorize_answers_the_full_size_colour_image_the_colorizer_gives(colorizer):
    client, batcher = _client(colorizer)
    try:
        response = client.post("/api/colorize", files={"image": ("astro.jpg", _jpeg(GRAY))})
        gray_answer = client.post("/api/colorize", files={"image": ("a.jpg", _jpeg(GRAY))}, data={"saturation": "0"})
        webp = client.post("/api/colorize", files={"image": ("a.jpg", _jpeg(GRAY))}, data={"format": "webp", "size": "96"})
        soft = client.post("/api/colorize", files={"image": ("a.jpg", _jpeg(GRAY))}, data={"detail": "0.25"})
    finally:
        batcher.close()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert 'filename="astro_color.png"' in response.headers["content-disposition"]
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    decoded = cv2.imdecode(np.frombuffer(_jpeg(GRAY), np.uint8), cv2.IMREAD_GRAYSCALE)
    expected = colorizer.colorize(decoded)
    assert rgb.shape == (100, 120, 3)
    assert np.abs(rgb.astype(int) - expected.astype(int)).max() <= 1
    flat = cv2.imdecode(np.frombuffer(gray_answer.content, np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert np.abs(flat[..., 0] - flat[..., 2]).max() <= 1  # saturation 0: no chroma
    soft_rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(soft.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    soft_expected = replace(colorizer, detail=0.25).colorize(decoded)  # the request's detail, not the model's
    assert np.abs(soft_rgb.astype(int) - soft_expected.astype(int)).max() <= 1
    assert np.abs(soft_expected.astype(int) - expected.astype(int)).max() > 1
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
    assert cv2.imdecode(np.frombuffer(webp.content, np.uint8), cv2.IMREAD_COLOR).shape == (100, 120, 3)


@pytest.mark.parametrize(
    "name, body, fields, status, words",
    [
        ("notes.txt", b"hello, these are words\n", {}, 415, ["notes.txt", "found text"]),
        ("scan.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", {}, 415, ["scan.pdf", "application/pdf"]),
        ("empty.jpg", b"", {}, 415, ["empty.jpg"]),
        ("cut.jpg", None, {}, 400, ["cut.jpg", "truncated JPEG"]),
        ("a.jpg", "photo", {"size": "100"}, 400, ["multiple of 32"]),
        ("a.jpg", "photo", {"saturation": "lots"}, 400, ["saturation", "float"]),
        ("a.jpg", "photo", {"detail": "2"}, 400, ["detail must be between 0.25 and 1"]),
        ("a.jpg", "photo", {"format": "gif"}, 400, ["format", "png, jpeg or webp"]),
        ("a.jpg", "photo", {"sise": "256"}, 400, ["unknown field", "sise"]),
    ],
)
def test_bad_requests_get_json_errors_with_their_status(colorizer, name, body, fields, status, words):
    photo = _jpeg(GRAY)
    body = {None: photo[: len(photo) // 2], "photo": photo}.get(body, body)
    client, batcher = _client(colorizer)
    try:
        response = client.post("/api/colorize", files={"image": (name, body)}, data=fields)
    finally:
        batcher.close()
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == status
    for word in words:
        assert word in response.json()["error"]


def test_no_image_field_and_too_large_uploads(colorizer):
    client, batcher = _client(colorizer, ServeLimits(max_file_mb=1, max_pixels=10_000))
    try:
        missing = client.post("/api/colorize", data={"size": "64"})
        big = client.post("/api/colorize", files={"image": ("big.png", b"\x89PNG" + bytes(1_300_000))})
        many_pixels = client.post("/api/colorize", files={"image": ("wide.jpg", _jpeg(GRAY))})  # 12,000 > 10,000
    finally:
        batcher.close()
    assert missing.status_code == 400 and "field named image" in missing.json()["error"]
    assert big.status_code == 413 and "1 MB" in big.json()["error"]
    assert many_pixels.status_code == 413 and "120x100" in many_pixels.json()["error"]


def test_a_full_queue_answers_503_with_retry_after(colorizer, monkeypatch):
    client, batcher = _client(colorizer)

    def full(*args, **kwargs):
        raise QueueFull("full")

    monkeypatch.setattr(batcher, "submit", full)
    try:
        response = client.post("/api/colorize", files={"image": ("a.jpg", _jpeg(GRAY))})
    finally:
        batcher.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]


def test_requests_beyond_the_limit_held_are_refused_while_others_run(colorizer):
    """max_queue=1: a second request that arrives while the first waits in the batcher gets 503 at once."""
    client, batcher = _client(colorizer, ServeLimits(max_queue=1), max_batch=8, max_wait_ms=3000)
    answers = {}
    first = threading.Thread(
        target=lambda: answers.setdefault("first", client.post("/api/colorize", files={"image": ("a.jpg", _jpeg(GRAY))}))
    )
    try:
        first.start()
        for _ in range(200):  # until the first request is held (waiting for its batch to fill)
            if client.get("/api/health").json()["in_flight"] == 1:
                break
            threading.Event().wait(0.01)
        second = client.post("/api/colorize", files={"image": ("b.jpg", _jpeg(GRAY))})
        first.join(timeout=30)
    finally:
        batcher.close()
    assert second.status_code == 503 and "retry-after" in second.headers
    assert answers["first"].status_code == 200


def test_health_and_model_describe_the_server(colorizer):
    client, batcher = _client(colorizer, ServeLimits(max_queue=5), max_batch=3)
    try:
        health, model = client.get("/api/health").json(), client.get("/api/model").json()
    finally:
        batcher.close()
    assert health["status"] == "ok" and health["model"] == "tiny-resnet" and health["queue_limit"] == 5
    assert model["name"] == "tiny-resnet" and model["render_size"] == colorizer.size and model["backend"] == "torch"
    assert model["detail"] == colorizer.detail == 1.0
    assert model["batching"]["max_batch"] == 3 and model["limits"]["max_file_mb"] == 50

"""`chromafuse serve`: the page's core without a browser, then the real page in headless Chromium."""

import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from typer.testing import CliRunner

from chromafuse import Colorizer
from chromafuse.cli import app
from chromafuse.serve import ServeLimits, colorize_uploads, summary_markdown
from chromafuse.serve import page as serve_module

CHROMIUM = Path("/usr/bin/chromium")


def _gray_photo(path: Path) -> Path:
    gray = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)[::2, ::2]
    cv2.imwrite(str(path), gray, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def _upload_and_colorize(page, paths, server_log: Path) -> str:
    """Upload, wait until the server has the files (its preview of the first photo shows), click, wait for result 0.

    Waiting for the preview keeps the click from racing the upload. (The model's own thread safety, which the
    preview and the click running at once once broke on OpenVINO, is tested in test_openvino.) Returns the status.
    """
    page.locator("#uploads input[type=file]").set_input_files([str(p) for p in paths])
    page.locator("#guide-image img").first.wait_for(timeout=120_000)
    page.locator("#colorize").click()
    try:
        page.locator("#result-0 img").first.wait_for(timeout=120_000)
    except Exception as error:
        status = page.locator("#status").inner_text()
        pytest.fail(f"no result after 120 s ({type(error).__name__}); status: {status!r}; server log:\n{server_log.read_text()}")
    return page.locator("#status").inner_text()


def _chroma_spread(rgb: np.ndarray) -> float:
    rgb = rgb.astype(np.float32)
    return float(np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean())


def test_uploads_become_results_and_bad_files_become_messages(tmp_path, tiny_checkpoint):
    colorizer = Colorizer.load(tiny_checkpoint, device="cpu", size=64)
    photo = _gray_photo(tmp_path / "moon walk.jpg")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    seen = []
    result = colorize_uploads(
        colorizer,
        [("moon walk.jpg", photo), ("notes.txt", text), ("moon walk.jpg", photo)],
        tmp_path / "out",
        on_progress=lambda i, n, name: seen.append((i, n, name)),
    )
    assert seen == [(0, 3, "moon walk.jpg"), (1, 3, "notes.txt"), (2, 3, "moon walk.jpg")]
    assert [item["name"] for item in result.items] == ["moon walk.jpg", "moon walk.jpg"]
    colors = [Path(item["color"]).name for item in result.items]
    assert colors == ["moon_walk_color.png", "moon_walk-2_color.png"]  # same upload name twice: both kept
    assert len(result.errors) == 1 and result.errors[0].startswith("notes.txt: ")
    out = cv2.imread(result.items[0]["color"])
    original = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    assert out.shape[:2] == original.shape  # full resolution
    before = cv2.imread(result.items[0]["gray"], cv2.IMREAD_GRAYSCALE)
    assert np.abs(before.astype(int) - original).max() <= 1  # the "before" side is the input's own gray
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(colors)
    text_md = summary_markdown("tiny-resnet", result)
    assert "**2** photos" in text_md and "tiny-resnet" in text_md and "notes.txt" in text_md


def test_upload_limits_are_enforced_with_a_message(tmp_path, tiny_checkpoint):
    colorizer = Colorizer.load(tiny_checkpoint, device="cpu", size=64)
    photo = _gray_photo(tmp_path / "big.jpg")  # 256 x 256 = 65,536 pixels
    result = colorize_uploads(colorizer, [("big.jpg", photo)], tmp_path / "out", ServeLimits(max_pixels=60_000))
    assert result.items == [] and "over the limit of 60,000 pixels" in result.errors[0]
    many = colorize_uploads(colorizer, [("big.jpg", photo)] * 3, tmp_path / "out2", ServeLimits(max_files=2))
    assert len(many.items) == 2 and "at most 2 per click" in many.errors[0]


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(serve_module.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert 'pip install "chromafuse[web]"' in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    pytest.importorskip("gradio", reason='the web extra is not installed (pip install "chromafuse[web]")')
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "chromafuse", "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while "chromafuse serve: http" not in (tmp_path / "serve.log").read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("server did not start:\n" + (tmp_path / "serve.log").read_text())
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is absent (Debian: apt-get install chromium)")
def test_page_colorizes_an_upload_in_a_real_browser(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    photo = _gray_photo(tmp_path / "astronaut-gray.jpg")
    requested_hosts = set()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 1100})
        page.on("request", lambda request: requested_hosts.add(urlparse(request.url).hostname))
        page.goto(server)
        status = _upload_and_colorize(page, [photo], tmp_path / "serve.log")
        assert float(page.locator("#detail input[type=number]").input_value()) == 1.0  # the detail slider, at the model's
        assert "Colorized **1**" not in status  # rendered, not raw markdown
        assert "chromafuse-fusion-s" in status
        with page.expect_download() as download_info:
            page.locator("#download-0").click()
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    rgb = cv2.cvtColor(cv2.imread(str(saved)), cv2.COLOR_BGR2RGB)
    assert rgb.shape[:2] == (256, 256)
    assert _chroma_spread(rgb) > 5.0  # colour, not gray
    assert requested_hosts == {"127.0.0.1"}  # no CDN, fonts or analytics
    if os.environ.get("CHROMAFUSE_SCREENSHOT"):
        Path(os.environ["CHROMAFUSE_SCREENSHOT"]).write_bytes((tmp_path / "page.png").read_bytes())


def test_sigterm_stops_the_server_and_removes_its_results_folder(tmp_path):
    pytest.importorskip("gradio", reason='the web extra is not installed (pip install "chromafuse[web]")')
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TMPDIR": str(scratch)}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chromafuse", "serve", "--port", str(_free_port())],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 120
        while "chromafuse serve: http" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("server did not start:\n" + log_path.read_text())
            time.sleep(0.5)
        assert len(list(scratch.glob("chromafuse-serve-*"))) == 1
        process.terminate()  # SIGTERM
        assert process.wait(timeout=60) == 0
    assert list(scratch.glob("chromafuse-serve-*")) == []


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is absent (Debian: apt-get install chromium)")
def test_a_non_image_beside_a_photo_is_named_and_the_photo_still_colorized(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    photo = _gray_photo(tmp_path / "good.jpg")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(server)
        status = _upload_and_colorize(page, [photo, notes], tmp_path / "serve.log")
        assert page.locator("#result-1").count() == 0
        browser.close()
    assert "Colorized 1 photo" in status and "notes.txt: not an image" in status


def test_the_api_answers_beside_the_page_on_the_same_server(server, tmp_path):
    httpx = pytest.importorskip("httpx", reason='the web extra is not installed (pip install "chromafuse[web]")')
    photo = _gray_photo(tmp_path / "astro.jpg")
    assert httpx.get(server).status_code == 200  # the page, mounted at /
    assert httpx.get(server + "api/health").json()["status"] == "ok"
    assert httpx.get(server + "api/model").json()["name"] == Colorizer.load().name
    response = httpx.post(server + "api/colorize", files={"image": ("astro.jpg", photo.read_bytes())}, timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    rgb = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert rgb.shape == (256, 256, 3) and _chroma_spread(rgb) > 2.0
    bad = httpx.post(server + "api/colorize", files={"image": ("notes.txt", b"words")}, timeout=60)
    assert bad.status_code == 415 and "notes.txt" in bad.json()["error"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is absent (Debian: apt-get install chromium)")
def test_a_red_hint_placed_by_clicking_turns_a_gray_region_red(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    y, x = np.mgrid[0:192, 0:256]
    gray = np.where(x < 128, 150, 90 + (y % 24)).astype(np.uint8)  # left: a flat gray wall; right: stripes
    photo = tmp_path / "wall.png"
    cv2.imwrite(str(photo), gray)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 1400})
        page.goto(server)
        page.locator("#uploads input[type=file]").set_input_files(str(photo))
        preview = page.locator("#guide-image img").first
        preview.wait_for(timeout=120_000)
        box = preview.bounding_box()
        preview.click(position={"x": box["width"] * 64 / 256, "y": box["height"] * 96 / 192})  # the wall's middle
        sync_api.expect(page.locator("#hint-table")).to_contain_text("#c81e1e", timeout=60_000)
        page.locator("#colorize").click()
        page.locator("#result-0 img").first.wait_for(timeout=120_000)
        with page.expect_download() as download_info:
            page.locator("#download-0").click()
        saved = tmp_path / download_info.value.suggested_filename
        download_info.value.save_as(saved)
        browser.close()
    lab = cv2.cvtColor(cv2.imread(str(saved)), cv2.COLOR_BGR2LAB).astype(np.float32) - 128.0  # OpenCV: a, b offset 128
    hinted_a = lab[80:112, 48:80, 1].mean()
    assert hinted_a > 15.0, f"the hinted wall came out with a = {hinted_a:.1f} (red is a > 0)"

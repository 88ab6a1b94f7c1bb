"""`python -m mnistx.serve`: the drawing app, served for real and driven in a real browser.

Two MLPs trained for one epoch on the real MNIST (a two-job sweep) are served by the command
itself; its JSON endpoint is asked over HTTP, and its page is driven in Debian's headless
Chromium by Playwright: strokes drawn with the mouse, files chosen and dropped. CI installs
chromium and sets MNISTX_BROWSER=1, so there the browser tests must run; elsewhere they are
skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TINY_OVERRIDES, png_bomb, run_cli
from torchvision.datasets import MNIST

from mnistx.predict import predict

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = pytest.mark.xdist_group("app")

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium tries Google's hosts, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
QUIET = [o for o in TINY_OVERRIDES if o.startswith(("trainer.enable", "callbacks"))]


@pytest.fixture(scope="module")
def sweep(mnist_dir, tmp_path_factory) -> Path:
    """A finished two-job sweep: MLPs with relu and tanh, one epoch each."""
    cwd = tmp_path_factory.mktemp("app")
    run_cli(
        cwd, "-m", f"data.data_dir={mnist_dir}", "trainer.max_epochs=1",
        "model.activation=relu,tanh", *QUIET,
    )  # fmt: skip
    (folder,) = (cwd / "outputs" / "multirun").glob("*/*")
    return folder


def start_server(*settings: str, cwd: Path) -> tuple[subprocess.Popen, str, list[str]]:
    """`python -m mnistx.serve SETTINGS`, its URL and what it printed before serving."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistx.serve", *settings],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    watchdog = threading.Timer(120, proc.kill)  # a server that never comes up fails the test
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("JSON: "):
                return proc, line.split()[-1].removesuffix("/api/predict"), lines
    finally:
        watchdog.cancel()
    proc.wait(timeout=30)
    raise AssertionError(f"serve ended ({proc.returncode}): {lines}\n{proc.stderr.read()}")


@pytest.fixture(scope="module")
def served(sweep) -> Iterator[tuple[str, subprocess.Popen, list[str]]]:
    proc, url, lines = start_server(f"run={sweep}", "port=0", cwd=sweep.parent)
    yield url, proc, lines
    proc.terminate()
    proc.wait(timeout=30)


def post(url: str, data: bytes, name: str = "upload") -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/predict", data=data, method="POST", headers={"X-Filename": name}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024


@pytest.fixture(scope="module")
def digits(mnist_dir, tmp_path_factory) -> list[tuple[Path, int]]:
    """Official test digits saved as PNG files, as a user would upload them."""
    folder = tmp_path_factory.mktemp("digits")
    test = MNIST(str(mnist_dir), train=False)
    files = []
    for i in range(5):
        image, label = test[i]
        image.save(folder / f"digit{i}.png")
        files.append((folder / f"digit{i}.png", int(label)))
    return files


@pytest.mark.slow
def test_the_endpoint_answers_as_mnistx_predict_does(served, sweep, digits):
    url, proc, lines = served
    assert lines[0].startswith("Serving 2 models at http://127.0.0.1:")
    with urllib.request.urlopen(f"{url}/api/models") as response:
        listed = json.load(response)["models"]
    assert [m["label"] for m in listed] == ["model.activation=relu", "model.activation=tanh"]
    assert all(m["model"] == "MLP" and m["test_acc"] > 0.9 for m in listed)

    for path, _ in digits:
        status, answer = post(url, path.read_bytes(), path.name)
        assert status == 200
        assert len(answer["input"]) == 28 and all(len(row) == 28 for row in answer["input"])
        jobs = sorted(sweep.glob("model.activation=*"))
        for job, got in zip(jobs, answer["predictions"], strict=True):
            (expected,), errors = predict(images=str(path), run=str(job))
            assert not errors and got["run"] == str(job)
            assert got["class"] == expected["prediction"]
            assert [t["class"] for t in got["top3"]] == [t["class"] for t in expected["top3"]]
            for t, e in zip(got["top3"], expected["top3"], strict=True):
                assert t["probability"] == pytest.approx(e["probability"], abs=1e-4)
            assert sum(got["probabilities"]) == pytest.approx(1, abs=1e-3)
    hits = [post(url, p.read_bytes())[1]["predictions"][0]["class"] == y for p, y in digits]
    assert sum(hits) >= 4


@pytest.mark.slow
def test_bad_uploads_get_an_error_and_the_server_keeps_serving(served, digits):
    url, proc, _ = served
    good = digits[0][0].read_bytes()
    status, answer = post(url, b"hello, not a picture", "notes.txt")
    assert status == 400 and answer["error"].startswith("notes.txt: not an image")
    status, answer = post(url, b"")
    assert status == 400 and "No image" in answer["error"]
    status, answer = post(url, b"\0" * (11 * 2**20), "scan.png")
    assert status == 413 and "larger than 10 MB" in answer["error"]

    before = peak_rss_mb(proc.pid)
    bomb = png_bomb(9000, 9000)  # 10 kB on the wire, 81 megapixels decoded
    for _ in range(3):
        status, answer = post(url, bomb, "bomb.png")
        assert status == 413 and "9000x9000 pixels" in answer["error"]
    assert peak_rss_mb(proc.pid) - before < 50  # never decoded
    assert post(url, good)[0] == 200  # still serving
    assert proc.poll() is None


@pytest.mark.slow
def test_the_page_loads_nothing_from_elsewhere(served):
    url, _, _ = served
    with urllib.request.urlopen(url) as response:
        policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'self'")
    static = Path(__file__).resolve().parents[1] / "src" / "mnistx" / "app" / "static"
    for f in static.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f.name


def browser_or_skip():
    if not CHROMIUM.exists():
        if os.environ.get("MNISTX_BROWSER") == "1":
            raise AssertionError("MNISTX_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def stroke(page, points: list[tuple[float, float]], steps: int = 12) -> None:
    """One stroke with the mouse through `points` (pad pixels, 0-280)."""
    box = page.locator("#pad canvas").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        for i in range(1, steps + 1):
            page.mouse.move(x0 + ax + (bx - ax) * i / steps, y0 + ay + (by - ay) * i / steps)
    page.mouse.up()


def finger(page, points: list[tuple[float, float]], steps: int = 12) -> None:
    """The same stroke with a finger: touch events, as a phone's screen sends them."""
    box = page.locator("#pad canvas").bounding_box()
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, x: float, y: float) -> None:
        at = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": at})

    touch("touchStart", *points[0])
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        for i in range(1, steps + 1):
            touch("touchMove", ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps)
    touch("touchEnd", *points[-1])


def answered(page, before: str) -> str:
    """Wait until the page has nothing on its way and shows an answer other than `before`
    (the answer's number, or 'error'); return it."""
    page.wait_for_function(
        """b => document.body.dataset.settled === 'yes'
                && !['no', b].includes(document.body.dataset.answered)""",
        arg=before,
        timeout=10_000,
    )
    return page.evaluate("document.body.dataset.answered")


def settled_on(page, state: str) -> None:
    page.wait_for_function(
        """s => document.body.dataset.settled === 'yes' && document.body.dataset.answered === s""",
        arg=state,
        timeout=10_000,
    )


def cards(page) -> list[dict]:
    return page.evaluate(
        """[...document.querySelectorAll('#models .model')].map(c => ({
            label: c.querySelector('h2').textContent,
            digit: c.querySelector('.digit').textContent,
            bars: [...c.querySelectorAll('.bar')].map(b => [
                b.querySelector('.name').textContent,
                parseFloat(b.querySelector('.pct').textContent)]),
        }))"""
    )


@pytest.mark.slow
def test_drawing_with_the_mouse_and_uploading_files_in_chromium(served, sweep, digits, tmp_path):
    url, proc, _ = served
    ring = [(140 + 60 * math.sin(a / 10), 140 - 95 * math.cos(a / 10)) for a in range(64)]
    with browser_or_skip() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 700}, has_touch=True)
        elsewhere: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(url) else elsewhere.append(r.url))
        page.goto(url)
        page.wait_for_selector("body[data-ready=yes]")
        assert [c["label"] for c in cards(page)] == [
            "model.activation=relu",
            "model.activation=tanh",
        ]
        assert page.locator("#undo").is_disabled() and page.locator("#clear").is_disabled()

        # A one: a vertical stroke.
        stroke(page, [(140, 40), (140, 240)])
        n = answered(page, "no")
        assert page.locator("#prediction").text_content() == "1"
        one = cards(page)
        for card in one:
            assert card["digit"] == "1" and len(card["bars"]) == 3
            probs = [b[1] for b in card["bars"]]
            assert probs == sorted(probs, reverse=True) and probs[0] > 50
        # The 28x28 input view shows the stroke as the model saw it: ink in the middle column.
        ink = page.evaluate(
            """() => { const d = document.getElementById('input-view').getContext('2d')
                         .getImageData(0, 0, 28, 28).data;
                       let mid = 0, all = 0;
                       for (let i = 0; i < 784; i++) { all += d[4*i];
                         if (Math.abs(i % 28 - 14) <= 2) mid += d[4*i]; }
                       return [mid, all]; }"""
        )
        assert ink[1] > 0 and ink[0] / ink[1] > 0.9
        # What the page sent is what mnistx.predict reads from a file: the same answer.
        drawn = tmp_path / "drawn.png"
        data_url = page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
        drawn.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
        job = sorted(sweep.glob("model.activation=*"))[0]
        (expected,), _ = predict(images=str(drawn), run=str(job))
        assert expected["prediction"] == 1
        assert one[0]["bars"][0][1] == pytest.approx(
            100 * expected["top3"][0]["probability"], abs=0.1
        )

        # A second stroke changes the drawing; Undo brings back the one, exactly.
        stroke(page, [(60, 60), (220, 220)])
        n = answered(page, n)
        page.locator("#undo").click()
        n = answered(page, n)
        assert cards(page) == one

        # Clear empties the pad and the answer; a zero drawn next is read as a zero.
        page.locator("#clear").click()
        settled_on(page, "no")
        assert page.locator("#prediction").text_content() == "–"
        assert page.locator("#clear").is_disabled()
        stroke(page, ring, steps=2)
        n = answered(page, "no")
        assert page.locator("#prediction").text_content() == "0"
        page.screenshot(path=str(tmp_path / "app.png"))
        if os.environ.get("MNISTX_SCREENSHOT"):  # make screenshot: the README's picture
            shutil.copy(tmp_path / "app.png", os.environ["MNISTX_SCREENSHOT"])

        # A file chosen with the button: an official test digit, predicted as itself.
        path, label = digits[0]
        page.set_input_files("#file", str(path))
        n = answered(page, n)
        assert page.locator("#prediction").text_content() == str(label)
        assert page.locator("#source").text_content() == f"From {path.name}."
        assert page.locator("#clear").is_disabled()  # the pad was cleared for the file

        # A file dropped on the page; then files that are not usable: errors on the page.
        def drop(name: str, data: bytes, kind: str) -> None:
            transfer = page.evaluate_handle(
                """([name, bytes, kind]) => { const t = new DataTransfer();
                     t.items.add(new File([new Uint8Array(bytes)], name, {type: kind}));
                     return t; }""",
                [name, list(data), kind],
            )
            page.dispatch_event("#pad", "drop", {"dataTransfer": transfer})

        path, label = digits[1]
        drop(path.name, path.read_bytes(), "image/png")
        n = answered(page, n)
        assert page.locator("#prediction").text_content() == str(label)
        for name, data, message in [
            ("notes.txt", b"not a picture", "notes.txt: not an image"),
            ("bomb.png", png_bomb(9000, 9000), "bomb.png: the image is 9000x9000 pixels"),
        ]:
            drop(name, data, "image/png")
            settled_on(page, "error")
            assert message in page.locator("#error").text_content()
            assert page.locator("#prediction").text_content() == "–"
            page.evaluate("document.body.dataset.answered = 'no'")
        page.set_input_files(
            "#file",
            files=[{"name": "scan.png", "mimeType": "image/png", "buffer": b"\0" * 11 * 2**20}],
        )
        settled_on(page, "error")
        assert "larger than 10 MB" in page.locator("#error").text_content()

        # Still serving: a one drawn with a finger after the errors is answered.
        finger(page, [(140, 40), (140, 240)])
        answered(page, "error")
        assert page.locator("#error").is_hidden()
        assert page.locator("#prediction").text_content() == "1"
        browser.close()
    assert not elsewhere, elsewhere
    assert proc.poll() is None


def serve_error(capsys, *settings: str) -> str:
    """`python -m mnistx.serve SETTINGS` that must stop with one message: the message."""
    from mnistx.serve import main

    assert main(list(settings)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return " ".join(err.split())


def test_settings_and_ports_that_cannot_be_served(capsys, tmp_path):
    assert "Say which models to serve: run=" in serve_error(capsys)
    assert "Cannot read 'model=cnn'" in serve_error(capsys, "run=x", "model=cnn")
    assert "port=http is not a port number" in serve_error(capsys, "run=x", "port=http")
    assert "port=70000 is not a port" in serve_error(capsys, "run=x", "port=70000")
    assert "Run folder nowhere does not exist" in serve_error(capsys, "run=nowhere", "port=0")
    (tmp_path / "notes").mkdir()
    message = serve_error(capsys, f"run={tmp_path / 'notes'}", "port=0")
    assert "is not a run folder" in message and "run=outputs/" in message
    # Not this machine's address: one message, before any model is loaded.
    assert "Cannot listen on 192.0.2.1:7860" in serve_error(capsys, "run=x", "host=192.0.2.1")
    # A port another program holds.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        message = serve_error(capsys, "run=nowhere", f"port={port}")
    assert f"Port {port} on 127.0.0.1 is in use" in message and "port=0" in message


@pytest.mark.slow
def test_runs_without_a_checkpoint_are_named(capsys, sweep, tmp_path):
    relu, tanh = sorted(sweep.glob("model.activation=*"))
    copy = tmp_path / sweep.name
    shutil.copytree(sweep, copy)
    shutil.rmtree(copy / relu.name / "checkpoints")
    message = serve_error(capsys, f"run={copy / relu.name}", "port=0")
    assert "No checkpoint in" in message and "checkpoints" in message
    # A sweep folder: its jobs with a checkpoint are served, the others named and left out.
    from mnistx.app.models import load_models

    models, skipped = load_models([str(copy)])
    assert [m.label for m in models] == ["model.activation=tanh"]
    assert skipped == ["model.activation=relu: no checkpoint"]
    shutil.rmtree(copy / tanh.name / "checkpoints")
    message = serve_error(capsys, f"run={copy}", "port=0")
    assert "none of its 2 jobs finished with a checkpoint" in message
    # The same run twice is served once; two runs of one sweep side by side.
    models, _ = load_models([str(relu), str(relu), str(tanh)])
    assert [m.run for m in models] == [relu, tanh]


def test_classes_are_named_as_their_dataset_names_them():
    from mnistx.app.models import class_names

    assert class_names("torchvision.datasets.MNIST") == [str(i) for i in range(10)]
    fashion = class_names("torchvision.datasets.FashionMNIST")
    assert len(fashion) == 10 and fashion[0] == "T-shirt/top" and fashion[9] == "Ankle boot"
    assert class_names("nowhere.Dataset") == [str(i) for i in range(10)]


def _raw(url: str, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send raw HTTP from a given loopback address and read the whole answer."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30, source_address=(source, 0)) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_slow_clients_do_not_starve_others_and_are_cut_off(served):
    import socket
    import time

    url = served[0]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    slow = []
    for _ in range(80):  # more than uvicorn's old limit_concurrency of 64
        try:
            s = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            slow.append(s)
        except OSError:
            break
    start = time.monotonic()
    with urllib.request.urlopen(f"{url}/api/models", timeout=10) as response:
        assert response.status == 200  # another client is served at once, not 503
    assert time.monotonic() - start < 5
    for s in slow:
        s.settimeout(20)
    closed = 0
    for s in slow:
        try:
            closed += s.recv(1024) == b""  # the deadline closed it
        except ConnectionResetError:
            closed += 1  # the per-client cap closed it at once
        except TimeoutError:
            pass
        s.close()
    assert closed == len(slow)


@pytest.mark.slow
def test_other_hosts_and_cross_origin_posts_are_refused(served, digits):
    url = served[0]
    image = digits[0][0].read_bytes()
    here = url.removeprefix("http://")
    rebound = _raw(url, f"GET /api/models HTTP/1.1\r\nHost: evil.example:{here.split(':')[1]}\r\n"
                        "Connection: close\r\n\r\n".encode())  # fmt: skip
    assert rebound.startswith(b"HTTP/1.1 421")
    post_head = (
        f"POST /api/predict HTTP/1.1\r\nHost: {here}\r\nContent-Length: {len(image)}\r\n"
        "Connection: close\r\n"
    )
    cross = _raw(url, (post_head + "Origin: http://evil.example\r\n\r\n").encode() + image)
    assert cross.startswith(b"HTTP/1.1 403")
    fetch = _raw(url, (post_head + "Sec-Fetch-Site: cross-site\r\n\r\n").encode() + image)
    assert fetch.startswith(b"HTTP/1.1 403")
    same = _raw(url, (post_head + f"Origin: {url}\r\n\r\n").encode() + image)
    assert same.startswith(b"HTTP/1.1 200") and b'"predictions"' in same


@pytest.mark.slow
def test_fifty_large_uploads_at_once_keep_memory_bounded(served):
    from concurrent.futures import ThreadPoolExecutor

    url, proc, _ = served
    big = b"\x89PNG\r\n\x1a\n" + bytes(9 * 2**20)  # 9 MB that is not a readable PNG
    before = peak_rss_mb(proc.pid)

    def code(_: int) -> int:
        try:
            return post(url, big)[0]
        except (urllib.error.URLError, ConnectionError):
            return 0  # over the per-client connection cap: closed

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(code, range(50)))
    assert set(codes) <= {0, 400, 503} and codes.count(400) >= 4, codes
    # Measured here: ~330 MB more; the issue measured 0.75 -> 2.6 GB before the bounds.
    assert peak_rss_mb(proc.pid) - before < 600

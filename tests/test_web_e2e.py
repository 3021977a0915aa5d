"""The studio page end to end in a real headless browser (Debian's chromium and chromedriver,
driven by selenium): upload sounds → the daemon trains with a tiny budget → candidates appear →
the player loads each one (its duration right) → one is sent to the simulated Mirage over a
pty → the page shows the ACK and the read-back.

``MIRAGEN_WEB_SCREENSHOTS=DIR`` saves a picture of each page there (docs/web/ is made so).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import Harness, cycle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
RATE = 29411
TABS = ("status", "sounds", "candidates", "deliver", "requests", "triggers")

webdriver = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI: chromium and chromedriver must be installed (.ci/run does it)")
    pytest.skip(
        "headless browser test: apt-get install chromium chromium-driver", allow_module_level=True
    )

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def studio(tmp_path):
    """The daemon (simulated Mirage on a pty), `miragen web` and a headless Chromium."""
    h = Harness(
        tmp_path / "h",
        train_seconds=3,
        route="sysex",
        config={"generate": {"count": 2}, "deliver": {"verify": True}},
    )
    port = _free_port()
    daemon = h.start()
    with open(tmp_path / "web.log", "ab") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "miragen", "web", "--config", str(h.config)]
            + ["--listen", f"127.0.0.1:{port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=h.env,
        )
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.add_argument("--window-size=1280,900")
    opts.add_argument("--autoplay-policy=no-user-gesture-required")
    opts.binary_location = CHROMIUM
    driver = None
    try:
        _wait_port(port, web, tmp_path / "web.log")
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        driver.base = f"http://127.0.0.1:{port}/"  # type: ignore[attr-defined]
        yield h, driver
    finally:
        if driver is not None:
            driver.quit()
        web.terminate()
        web.wait(timeout=15)
        h.stop(daemon)
        h.close()


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"miragen web exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("miragen web did not listen within 30 s")


def _shoot(driver, name: str) -> None:
    folder = os.environ.get("MIRAGEN_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def _click(driver, css: str) -> None:
    """Click the element ``css`` names, finding it again if the page redrew it meanwhile."""

    def attempt(d) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(attempt)


def _tab(driver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#tabs a[data-tab="{name}"]').click()
    WebDriverWait(driver, 5).until(
        lambda d: "active" in d.find_element(By.ID, name).get_attribute("class")
    )


def _candidate_ids(driver) -> list[str]:
    """The tiles' ids in one script call: the list may be redrawn between finding a tile and
    reading its attribute (a stale element)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#candidate-list .tile')]"
        ".map(t => t.dataset.candidate)"
    )


def test_upload_train_listen_and_send(studio, tmp_path):
    h, driver = studio
    rng = random.Random(7)
    files = []
    for i in range(12):
        p = tmp_path / "drop" / f"wave{i:02d}.pcm"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(cycle(rng))
        files.append(str(p))

    driver.get(driver.base)
    wait = WebDriverWait(
        driver, 120, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    wait.until(lambda d: d.find_element(By.ID, "live").text == "live")
    _tab(driver, "sounds")
    driver.find_element(By.ID, "upload-class").send_keys("organ")
    driver.find_element(By.ID, "upload-files").send_keys("\n".join(files))
    # ingest → the class appears with its sounds, drawn from the corpus
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#class-list .tile")) >= 12)
    assert "organ" in driver.find_element(By.ID, "class-list").text
    # training (3 s budget) → a judged model: the class shows a verdict instead of "no model"
    wait.until(lambda d: "no model" not in d.find_element(By.ID, "class-list").text)

    _tab(driver, "requests")
    driver.find_element(By.ID, "req-name").send_keys("e2e-1")
    driver.find_element(By.CSS_SELECTOR, "#request-form button").click()
    _tab(driver, "candidates")
    ids = wait.until(lambda d: _candidate_ids(d) if len(_candidate_ids(d)) >= 2 else None)
    for cid in ids:  # the list is redrawn as events arrive: find each tile afresh
        _click(driver, f'#candidate-list .tile[data-candidate="{cid}"] img')
        wait.until(lambda d, c=cid: d.find_element(By.ID, "now-playing").text.startswith(c))
        dur = float(driver.find_element(By.ID, "now-playing").get_attribute("data-duration"))
        size = (h.state / "out" / cid).stat().st_size
        assert dur == pytest.approx(size / RATE, rel=1e-6), cid  # 8-bit at 29,411 Hz
    _click(driver, f'.tile[data-candidate="{ids[0]}"] .actions button:nth-child(1)')  # Keep
    wait.until(
        lambda d: (
            "keep"
            in d.find_element(By.CSS_SELECTOR, f'.tile[data-candidate="{ids[0]}"]').get_attribute(
                "class"
            )
        )
    )
    _shoot(driver, "candidates")
    chosen = ids[1]
    _click(driver, f'.tile[data-candidate="{chosen}"] .actions button:nth-child(3)')  # Send…
    WebDriverWait(driver, 5).until(
        lambda d: "active" in d.find_element(By.ID, "deliver").get_attribute("class")
    )
    assert driver.find_element(By.ID, "deliver-candidate").get_attribute("value") == chosen
    driver.find_element(By.ID, "deliver-ws").clear()
    driver.find_element(By.ID, "deliver-ws").send_keys("2")
    driver.find_element(By.CSS_SELECTOR, "#deliver-form button").click()
    # progress at wire speed, then the ACK and the read-back on the page
    bar = driver.find_element(By.ID, "deliver-progress")
    wait.until(lambda d: (bar.get_attribute("data-request") or "").startswith("web-"))
    wait.until(lambda d: bar.get_attribute("data-phase") == "done")
    result = driver.find_element(By.ID, "deliver-result").text
    assert "ACK" in result and "equal (verified)" in result, result
    _shoot(driver, "deliver")

    # the daemon delivered exactly the candidate the page chose, verified by reading it back
    def records() -> list[dict]:
        found = h.state.glob("out/requests/web-*.json")
        return [json.loads(p.read_text()) for p in found if not p.name.endswith(".request.json")]

    wait.until(lambda d: all(r.get("state") == "done" for r in records()))
    assert [r["delivered"] for r in records()] == [f"out/{chosen}"]
    sysex = records()[0]["delivery"]["sysex"]
    assert sysex["ok"] and sysex["verified"] and sysex["wavesample"] == 2
    for name in TABS:
        if name not in ("candidates", "deliver"):
            _tab(driver, name)
            _shoot(driver, name)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

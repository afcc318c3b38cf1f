"""A real browser for the page's tests: Debian's headless Chromium, driven through Debian's
chromedriver by Selenium. Nothing is downloaded (Selenium Manager is off) and the browser
resolves no host but 127.0.0.1, so a test can only ever reach the local stack."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# The accessibility rules: axe-core, as the selenium-axe-python wheel ships it.
AXE_JS = "selenium_axe_python/axe-core/axe.min.js"


def chromium_paths() -> tuple[str, str]:
    """Chromium and its chromedriver (make tools installs both from Debian's packages)."""
    browser = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise RuntimeError(
            "headless Chromium and chromedriver are needed: "
            "apt-get install chromium chromium-driver (make tools does it)"
        )
    return browser, driver


@contextmanager
def chromium(downloads: Path, *, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never fetches a driver
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Loopback only: any other name fails to resolve, whatever the page asks for.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield Browser(driver, downloads)
    finally:
        driver.quit()


class Browser:
    def __init__(self, driver: webdriver.Chrome, downloads: Path) -> None:
        self.driver = driver
        self.downloads = downloads

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda: self.js("return document.body.dataset.ready === 'true'"), "the page")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element("id", element_id)

    def css(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements("css selector", selector)

    def texts(self, selector: str) -> list[str]:
        """The text of every element the selector matches, in document order."""
        found: list[str] = self.js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
            selector,
        )
        return found

    def click(self, selector: str) -> None:
        """Click the first element the selector matches, found again if the page redrew it
        between finding and clicking (the job list redraws as it polls)."""
        for _ in range(10):
            try:
                self.wait(lambda: self.css(selector), selector)[0].click()
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{selector} kept being redrawn")

    def text(self, element_id: str) -> str:
        return str(self.js("return document.getElementById(arguments[0]).textContent", element_id))

    def visible(self, element_id: str) -> bool:
        return bool(self.by_id(element_id).is_displayed())

    def wait(self, check: Callable[[], T | None], what: str, timeout_s: float = 30) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.2)

    def errors(self) -> list[str]:
        """What the page logged at SEVERE: script errors, CSP violations, failed loads."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def overflows(self) -> int:
        """How far the page is wider than the window (0: nothing to scroll sideways)."""
        return int(
            self.js(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )

    def axe(self, axe_js: str) -> list[dict[str, Any]]:
        """axe-core's violations of WCAG 2.1 A and AA on the page as it is now."""
        self.js(axe_js)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
            ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify("
            "[{id: 'axe-error', help: String(e), nodes: []}])));"
        )
        violations: list[dict[str, Any]] = json.loads(result)
        return violations

    def drop_file(self, zone_id: str, path: Path, content_type: str) -> None:
        """Drop a file on an element as a user's drag would: a DataTransfer holding it, and
        the dragenter, dragover and drop events in order (Selenium cannot drag from the OS)."""
        self.js(
            """
            const [zoneId, name, type, b64] = arguments;
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, {type}));
            const zone = document.getElementById(zoneId);
            for (const kind of ['dragenter', 'dragover', 'drop']) {
              zone.dispatchEvent(new DragEvent(kind, {dataTransfer: data, bubbles: true,
                                                      cancelable: true}));
            }
            """,
            zone_id,
            path.name,
            content_type,
            _b64(path),
        )

    def downloaded(self, name: str, timeout_s: float = 20) -> Path:
        target = self.downloads / name

        def done() -> Path | None:
            partial = list(self.downloads.glob("*.crdownload"))
            return target if target.exists() and not partial else None

        return self.wait(done, f"the download {name}", timeout_s)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()

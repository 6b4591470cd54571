"""Loads key pages of a built documentation site in headless Chromium and checks what a reader sees.

    python docs_tools/check_site.py SITE_DIR [--screenshots DIR]

The site is served from 127.0.0.1 only, and Chromium resolves no other host, so a page that still
needs the network fails here. For each page the check fails, naming the page, unless

- the page loaded (no 404) and every image on it was decoded,
- MathJax finished and typeset every formula: each `.arithmatex` element holds rendered math
  (`mjx-container`), none shows raw `\\(`/`\\[` TeX or a MathJax error, and the page has formulas,
- the browser logged no console error (failed requests and uncaught exceptions included),
- the text the page is expected to show is there (the API page's Arguments lists).

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package (`.ci/run` installs them).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

# Page (URL path under the site root) and the texts it must show besides its formulas.
PAGES: dict[str, tuple[str, ...]] = {
    "": (),
    "rbm/": (),
    "derivatives/": (),
    "local-updates/": (),
    "log-cosh/": (),
    "performance/": (),
    "api/": ("Arguments:", "Returns:"),
}

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm
    # Every host but the loopback server fails to resolve: the site must not need the network.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1600",
)

# Resolves once MathJax has loaded and finished every typesetting pass queued so far.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + arguments[0];
function settle(promise) {
  promise.then(() => {
    if (MathJax.startup.promise !== promise) return settle(MathJax.startup.promise);
    setTimeout(() => MathJax.startup.promise === promise ? done("ok") : settle(MathJax.startup.promise), 100);
  }, (err) => done("MathJax failed: " + err));
}
(function poll() {
  if (document.readyState === "complete" && window.MathJax && MathJax.startup && MathJax.startup.promise) {
    settle(MathJax.startup.promise);
  } else if (Date.now() > deadline) {
    done("MathJax did not start (window.MathJax is " + typeof window.MathJax + ")");
  } else {
    setTimeout(poll, 50);
  }
})();
"""

INSPECT = """
const math = Array.from(document.querySelectorAll(".arithmatex"));
const raw = /\\\\\\(|\\\\\\[|\\\\\\)|\\\\\\]/;
return {
  title: document.title,
  article: document.querySelector("article") !== null,
  text: document.body.innerText,
  arithmatex: math.length,
  rendered: document.querySelectorAll("mjx-container").length,
  untypeset: math.filter((el) => el.querySelector("mjx-container") === null)
                 .map((el) => el.textContent.trim().slice(0, 80)),
  raw: math.filter((el) => raw.test(el.textContent)).map((el) => el.textContent.trim().slice(0, 80)),
  errors: Array.from(document.querySelectorAll("mjx-merror")).map((el) => el.textContent.slice(0, 80)),
  broken_images: Array.from(document.images).filter((img) => !img.complete || img.naturalWidth === 0)
                      .map((img) => img.getAttribute("src")),
};
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_browser(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def check_page(driver: webdriver.Chrome, base: str, page: str, texts: tuple[str, ...]) -> list[str]:
    """The problems a reader would see on one page; empty when there are none."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(base + page)
    status = driver.execute_async_script(WAIT_FOR_MATHJAX, 15_000)
    info = driver.execute_script(INSPECT)
    problems = [] if status == "ok" else [status]
    if not info["article"] or info["title"].startswith("404"):
        problems.append(f"not a documentation page (title {info['title']!r})")
    if info["arithmatex"] == 0:
        problems.append("no formula on the page (expected some)")
    if info["rendered"] < info["arithmatex"]:
        problems.append(f"{info['rendered']} rendered formulas for {info['arithmatex']} .arithmatex elements")
    problems += [f"formula not typeset: {t!r}" for t in info["untypeset"][:5]]
    problems += [f"raw TeX left in a formula: {t!r}" for t in info["raw"][:5]]
    problems += [f"MathJax error: {t!r}" for t in info["errors"][:5]]
    problems += [f"image not loaded: {src}" for src in info["broken_images"]]
    problems += [f"text {t!r} missing" for t in texts if t not in info["text"]]
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append(f"console error: {entry.get('message', '')[:300]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="a site built by mkdocs build")
    parser.add_argument("--screenshots", type=Path, help="save a PNG of each page into this folder")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(
            f"check_site: build the site first (mkdocs build --strict --site-dir {args.site}): "
            f"{args.site} holds no index.html",
            file=sys.stderr,
        )
        return 2
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    server = serve(args.site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failed = []
    with tempfile.TemporaryDirectory(prefix="check-site-profile-") as profile:
        try:
            driver = start_browser(profile)
        except WebDriverException as err:
            print(f"check_site: Chromium did not start: {err.msg}", file=sys.stderr)
            return 2
        try:
            for page, texts in PAGES.items():
                name = page.rstrip("/") or "index"
                try:
                    problems = check_page(driver, base, page, texts)
                except WebDriverException as err:
                    problems = [f"the browser failed: {err.msg}"]
                if args.screenshots:
                    driver.save_screenshot(str(args.screenshots / f"{name}.png"))
                if problems:
                    failed.append(name)
                    print(f"FAIL {name} ({base}{page}):")
                    print("\n".join(f"    {p}" for p in problems))
                else:
                    print(f"ok   {name}")
        finally:
            driver.quit()
            server.shutdown()
    elapsed = time.monotonic() - start
    if failed:
        print(
            f"check_site: {len(failed)} of {len(PAGES)} pages failed: {', '.join(failed)} ({elapsed:.1f} s)"
        )
        return 1
    print(f"check_site: {len(PAGES)} pages ok in headless Chromium ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Open reports/index.html and every report it links in headless Chromium and list what is
broken: links to files that do not exist, images that do not decode, errors in the browser
console, and report notebooks that carry an error output.

It drives Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) through Selenium; nothing is downloaded. Requests to the network
are blocked, so a check gives the same answer with or without a connection: the site is
local files, and the http(s) URLs an nbconvert export names (require.js and MathJax from a
CDN) are listed under ``external`` rather than counted as problems.

How an error output is recognised in an nbconvert (lab template) export: the template
renders an error output and a stderr stream with the same markup, ``<div
class="jp-RenderedText jp-OutputArea-output"
data-mime-type="application/vnd.jupyter.stderr"><pre>``, so that markup alone would also
flag every warning, log line and progress bar. What only an error output has is IPython's
traceback, whose ``<ExceptionName>: <message>`` line starts with the exception's name in
red (``<span class="ansi-red-fg">ZeroDivisionError</span>:``), in every exception mode
(Context, Verbose, Plain, Minimal) and for syntax errors; a stderr stream is uncoloured
text, even when it holds a traceback written by ``logging.exception``. Also caught: the
classic template's ``output_error`` class and the ``#papermill-error-cell`` marker
papermill leaves in a notebook it stopped at an exception.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = ("headless Chromium not found (needs /usr/bin/chromium, /usr/bin/chromedriver "
                "and selenium): apt-get install chromium chromium-driver")
#: Links on the index whose targets must exist (``.html`` ones are also opened).
LOCAL_SUFFIXES = (".html", ".png", ".pdf", ".md", ".csv", ".tex")
WINDOW = (1400, 1000)
TIMEOUT_S = 60

_IMAGES_JS = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
images.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });  // load them all
const settled = i => i.complete ? Promise.resolve() : new Promise(ok => {
  i.addEventListener('load', ok, {once: true});
  i.addEventListener('error', ok, {once: true});
});
Promise.all(images.map(i => settled(i)
    .then(() => i.decode().then(() => i.naturalWidth > 0, () => false))))
  .then(ok => done(images.map((i, n) => [i.getAttribute('src') || '', ok[n]])));
"""

_ERRORS_JS = r"""
const found = [];
const where = node => {
  const cell = node.closest('.jp-Cell, .cell');
  const prompt = cell && cell.querySelector('.jp-InputPrompt, .input_prompt');
  const text = prompt ? prompt.textContent.replace(/\s+/g, ' ').trim() : '';
  return text.replace(/:$/, '') || 'a cell';
};
const stderr = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
for (const out of document.querySelectorAll(stderr)) {
  const red = new Set([...out.querySelectorAll('span.ansi-red-fg')].map(s => s.textContent));
  const line = out.textContent.split('\n').find(l => {
    const m = /^([A-Za-z_][\w.]*):/.exec(l);
    return m !== null && red.has(m[1]);
  });
  if (line !== undefined) found.push([where(out), line.trim()]);
}
for (const out of document.querySelectorAll('.output_error')) {
  const lines = out.textContent.trim().split('\n');
  found.push([where(out), lines[lines.length - 1].trim()]);
}
if (document.getElementById('papermill-error-cell')) {
  found.push(['papermill', 'execution stopped at an exception']);
}
return found;
"""

_EXTERNAL_JS = """
return [...new Set(performance.getEntriesByType('resource').map(r => r.name)
                   .filter(n => /^https?:/.test(n)))];
"""


def chromium_available() -> bool:
    """Whether Debian's chromium and chromedriver and the selenium package are installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return all(p.is_file() and os.access(p, os.X_OK) for p in (CHROMIUM, CHROMEDRIVER))


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not chromium_available():
        raise RuntimeError(INSTALL_HINT)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(TIMEOUT_S)
    driver.set_script_timeout(TIMEOUT_S)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    return driver


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _check_page(driver, url: str, label: str, summary: dict) -> None:
    """Load ``url`` (already loaded when it is the current page) and record its problems."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.wait import WebDriverWait

    problems = summary["problems"]
    if driver.current_url != url:
        try:
            driver.get(url)
        except TimeoutException:
            problems.append(f"{label}: not loaded within {TIMEOUT_S} s")
    try:  # navigation can return before the load event has fired
        WebDriverWait(driver, TIMEOUT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
    except TimeoutException:
        pass
    state = driver.execute_script("return document.readyState")
    if state != "complete":
        problems.append(f"{label}: document.readyState is {state!r}, not 'complete'")
    try:
        images = driver.execute_async_script(_IMAGES_JS)
    except TimeoutException:
        images = []
        problems.append(f"{label}: images still loading after {TIMEOUT_S} s")
    for src, ok in images:
        summary["images"] += 1
        if not ok:
            problems.append(f"{label}: image {src[:80]!r} did not load or decode")
    for cell, line in driver.execute_script(_ERRORS_JS):
        problems.append(f"{label}: error output in {cell}: {line[:200]}")
    for external in driver.execute_script(_EXTERNAL_JS):
        summary["external"].append(f"{label}: {external}")
    for entry in driver.get_log("browser"):
        if entry.get("level") != "SEVERE":
            continue
        message = entry.get("message", "")
        if message.startswith(("http://", "https://")) and "Failed to load resource" in message:
            continue  # a network URL (listed in "external" above), not a file of the site
        problems.append(f"{label}: browser console: {message[:300]}")
    summary["pages"] += 1


def check_site(index: Path, screenshot: Path) -> dict:
    """Check ``index`` and every local page it links; save a PNG screenshot of the index.

    Returns:
        ``{"pages", "images", "links"}`` (how many of each were checked), ``"problems"``
        (one string per failure, naming the page: a missing link target, an image that did
        not decode, a SEVERE console entry, an error output, a page not fully loaded) and
        ``"external"`` (network URLs the pages asked for, blocked).
    """
    index = Path(index).resolve()
    screenshot = Path(screenshot)
    summary: dict = {"pages": 0, "images": 0, "links": 0, "problems": [], "external": []}
    base = index.parent

    def label(path: Path) -> str:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return str(path)

    driver = _driver()
    try:
        driver.get(index.as_uri())
        _check_page(driver, driver.current_url, label(index), summary)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WINDOW[0], max(WINDOW[1], min(int(height) + 140, 12000)))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(screenshot)):
            summary["problems"].append(f"{label(index)}: screenshot {screenshot} failed")
        driver.set_window_size(*WINDOW)
        hrefs = driver.execute_script(
            "return [...document.querySelectorAll('a[href]')]"
            ".map(a => [a.getAttribute('href'), a.href])")
        pages: dict[str, Path] = {}
        for raw, url in hrefs:
            if raw.startswith("#"):
                continue
            path = _local_path(url.split("#")[0])
            if path is None or path.suffix.lower() not in LOCAL_SUFFIXES:
                continue
            summary["links"] += 1
            if not path.is_file():
                summary["problems"].append(
                    f"{label(index)}: link {raw!r} points to a missing file {path}")
            elif path.suffix.lower() == ".html" and path != index:
                pages.setdefault(path.as_uri(), path)
        for url, path in pages.items():
            _check_page(driver, url, label(path), summary)
    finally:
        driver.quit()
    return summary


if __name__ == "__main__":  # python tests/browser.py reports/index.html [screenshot.png]
    import json
    import sys

    site = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/index.html")
    shot = Path(sys.argv[2] if len(sys.argv) > 2 else site.with_suffix(".png"))
    result = check_site(site, shot)
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["problems"] else 0)

"""The run's pages as a reader sees them: rendered by a real browser (headless Chromium, from
Debian's apt where missing; skipped with the reason where it cannot be had) at 1400 px, every
page loads, no element reaches beyond the window's width, every figure is there."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH = 1400

# Run after the page has loaded: open every <details>, then measure.
PROBE = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) {
      wide.push(el.tagName + ' ' + (el.textContent || el.alt || '').slice(0, 60) + ' @' +
                Math.round(box.right));
    }
  }
  const images = [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}));
  const out = document.createElement('pre');
  out.id = 'avhrrsm-probe';
  out.textContent = JSON.stringify({width, scrollWidth: document.documentElement.scrollWidth,
                                    wide: wide.slice(0, 20), images});
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str:
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no Chromium here, and it cannot be installed (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not shutil.which("chromium"):
        pytest.skip(f"Chromium could not be installed from apt: {done.stderr[-300:]}")
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> str:
    return _browser()


def render(browser: str, page: Path, tmp_path: Path) -> dict:
    """Load a copy of ``page`` (beside copies of its folder's files) at 1400 px; the probe."""
    folder = tmp_path / page.parent.name
    shutil.copytree(
        page.parent, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.zarr")
    )
    copy = folder / page.name
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--window-size={WIDTH},1000", "--virtual-time-budget=10000", "--dump-dom",
            copy.as_uri(),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    found = re.search(r"<pre id=\"avhrrsm-probe\">(.*?)</pre>", done.stdout, re.S)
    assert found, f"{page.name} did not render: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "figures"),
    [
        ("validation/report.html", 8),  # six figures, the reliability, the comparison scatter
        ("comparison/summary.html", 3),
        ("provenance.html", 0),
    ],
)
def test_every_page_renders_within_the_width_with_its_figures(
    tiny_run, browser, tmp_path, page, figures
):
    probe = render(browser, tiny_run / page, tmp_path)
    assert probe["width"] <= WIDTH
    assert probe["wide"] == [], f"{page}: elements beyond {probe['width']} px: {probe['wide']}"
    assert probe["scrollWidth"] <= probe["width"], page
    assert len(probe["images"]) == figures, probe["images"]
    assert all(image["ok"] for image in probe["images"]), probe["images"]

"""The HTML report in a real headless browser (Debian's ``chromium``): every figure loads, the page renders.

Each study's quick report is opened twice: a copy of ``index.html`` with a probe script appended (the
report itself has no scripts) is loaded with ``--dump-dom``, and the script writes into the DOM what
the browser saw: each image's ``complete`` and ``naturalWidth``, the verdict's text, the page's
size; then ``index.html`` itself is screenshotted at the page's full height. Set
``ADAMLAB_SCREENSHOTS=DIR`` to keep the screenshots.

Without chromium the test skips, except under CI (``CI`` set), where it fails: CI installs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from adamlab.cli import main

WIDTH = 1200
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images, (img) => ({
    src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    shownWidth: img.getBoundingClientRect().width, alt: img.alt,
  }));
  const verdict = document.querySelector(".verdict");
  const probe = document.createElement("pre");
  probe.id = "adamlab-probe";
  probe.textContent = JSON.stringify({
    images, figures: document.querySelectorAll("figure").length,
    captions: Array.from(document.querySelectorAll("figcaption"), (c) => c.textContent),
    verdict: verdict ? verdict.textContent : null,
    scrollWidth: document.documentElement.scrollWidth, scrollHeight: document.documentElement.scrollHeight,
    innerWidth: window.innerWidth,
  });
  document.body.appendChild(probe);
});
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "the browser test needs Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{message}; CI is set, so it must run")
    pytest.skip(message)


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--allow-file-access-from-files", f"--user-data-dir={profile}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def _probe(binary: str, out: Path, profile: Path) -> dict:
    page = (out / "index.html").read_text(encoding="utf-8")
    probe_page = out / "_probe.html"
    probe_page.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = _run_chromium(binary, profile, f"--window-size={WIDTH},1000", "--virtual-time-budget=10000", "--dump-dom",
                            probe_page.as_uri()).stdout  # fmt: skip
    finally:
        probe_page.unlink()
    found = re.search(r'<pre id="adamlab-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe script did not run; DOM starts:\n{dom[:2000]}"

    return json.loads(html.unescape(found.group(1)))


def _screenshot(binary: str, out: Path, profile: Path, height: int, name: str) -> Path:
    shot = out.parent / f"{name}.png"
    _run_chromium(binary, profile, f"--window-size={WIDTH},{height}", f"--screenshot={shot}", (out / "index.html").as_uri())
    keep = os.environ.get("ADAMLAB_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


@pytest.mark.parametrize("study", ["reddi", "bias-correction", "adam-paper"])
def test_report_renders_in_chromium_with_every_figure_loaded(study, tmp_path, capsys):
    binary = _chromium()
    out = tmp_path / "report"
    assert main(["study", study, "--quick", "--db", str(tmp_path / "s.sqlite"), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs

    seen = _probe(binary, out, tmp_path / "profile")
    # every figure written is on the page, and the browser decoded each one
    assert seen["figures"] == len(pngs) and sorted(i["src"] for i in seen["images"]) == pngs, seen
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["shownWidth"] > 0.5 * min(image["width"], WIDTH - 100), image  # shown at a readable size
        assert image["alt"] and not re.fullmatch(r"[\w-]+", image["alt"]), f"alt text is a file name: {image}"
    for caption in seen["captions"]:  # says what the figure shows, not only its file name
        assert len(caption.split()) >= 5, caption
    assert result["outcome"] in seen["verdict"] and result["because"] in " ".join(seen["verdict"].split()), seen["verdict"]
    # nothing runs off the right edge (a wide table would)
    assert seen["scrollWidth"] <= seen["innerWidth"], seen

    shot = _screenshot(binary, out, tmp_path / "profile", min(seen["scrollHeight"] + 40, 8000), f"report-{study}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[1] == WIDTH and pixels.shape[0] >= 600
    assert pixels.std() > 0.05, "the screenshot is (nearly) one colour"
    inked = (pixels.min(axis=2) < 0.8).mean(axis=1)  # per row: the share of non-white pixels
    assert (inked > 0).mean() > 0.3, "most of the page rendered blank"

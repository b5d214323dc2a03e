"""CaseViewer against a plain ipywidgets.Image + IntSlider viewer, measured in headless Chromium.

    python benchmarks/viewer.py [--shape 300 512 512] [--steps 100] [--out benchmarks/results]

Starts JupyterLab on a free loopback port with a notebook that builds a synthetic CT
(int16 HU, default 512x512x300), then in one page:
  - first pixels: from the moment the page asks Lab to run the cell to the first image pixels
    on screen (ours: first plane drawn into its canvas; baseline: first <img> decoded);
  - slice change: key press on the focused viewer (ours) or slider handle (baseline) to the
    new slice's pixels (ours: canvas drawn; baseline: new <img> decoded), p50 and p95.
Prints ours, baseline and their ratio; writes viewer.json and viewer.png to --out.
Every request off 127.0.0.1 is blocked, as in the browser tests.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.servers import OfflineGuard, Server, launch_chromium, write_notebook  # noqa: E402

SETUP = '''
import io, numpy as np, ipywidgets as W
from PIL import Image
from imaging_workbench.dicom.volume import Volume
from imaging_workbench.widgets import CaseViewer

def phantom(shape):
    """Body ellipse of soft tissue with lungs, spine and noise; int16 HU."""
    z, y, x = shape
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.38 * y)) ** 2 + ((xx - x / 2) / (0.45 * x)) ** 2 < 1
    lungs = (((yy - 0.45 * y) / (0.2 * y)) ** 2 + ((np.abs(xx - x / 2) - 0.2 * x) / (0.12 * x)) ** 2) < 1
    spine = ((yy - 0.72 * y) ** 2 + (xx - x / 2) ** 2) < (0.05 * x) ** 2
    sl = np.full((y, x), -1000, np.int16); sl[body] = 40; sl[lungs] = -850; sl[spine] = 700
    rng = np.random.default_rng(0)
    vol = np.empty(shape, np.int16)
    for k in range(z):
        vol[k] = sl + rng.integers(-20, 21, size=(y, x), dtype=np.int16)
    return Volume(vol, (1.0, 0.7, 0.7), (0.0, 0.0, 0.0), np.eye(3), "CT", "bench", "synthetic CT", "BENCH")

vol = phantom(SHAPE)

def plain_viewer(volume, window=350.0, level=50.0):
    """The usual notebook viewer: the kernel windows a slice and sends a JPEG to an Image widget."""
    a = volume.array
    def encode(k):
        g = np.clip((a[k].astype(np.float32) - (level - window / 2)) * (255.0 / window), 0, 255).astype(np.uint8)
        buf = io.BytesIO(); Image.fromarray(g).save(buf, format="JPEG", quality=90); return buf.getvalue()
    img = W.Image(value=encode(a.shape[0] // 2), format="jpeg", width=a.shape[2], height=a.shape[1])
    slider = W.IntSlider(value=a.shape[0] // 2, min=0, max=a.shape[0] - 1, description="slice")
    slider.observe(lambda ch: setattr(img, "value", encode(ch["new"])), "value")
    box = W.VBox([slider, img]); box.add_class("plain-viewer")
    return box
'''
OURS = "ours = CaseViewer(vol)\nours"
BASELINE = "plain = plain_viewer(vol)\nplain"

RUN_CELL = """(i) => {
    const app = window.jupyterapp, nb = app.shell.currentWidget;
    nb.content.activeCellIndex = i;
    window.__t0 = performance.timeOrigin + performance.now();
    app.commands.execute('notebook:run-cell');
}"""

WATCH_PLAIN = """() => {
    // First pixels and each slice change of the plain viewer: an <img> whose new src is decoded.
    window.__plain = { first: null, changes: [], key: null };
    const seen = new WeakSet();
    const onImg = (img) => {
        if (seen.has(img)) return; seen.add(img);
        const done = () => img.decode().then(() => {
            const now = performance.now();
            if (window.__plain.first === null) window.__plain.first = performance.timeOrigin + now;
            else if (window.__plain.key !== null) { window.__plain.changes.push(now - window.__plain.key); window.__plain.key = null; }
        }).catch(() => {});
        new MutationObserver(done).observe(img, { attributes: true, attributeFilter: ['src'] });
        if (img.src) done();
    };
    new MutationObserver(() => document.querySelectorAll('.plain-viewer img').forEach(onImg))
        .observe(document.body, { childList: true, subtree: true });
    document.addEventListener('keydown', (e) => {
        if (e.target.closest && e.target.closest('.plain-viewer')) window.__plain.key = e.timeStamp;
    }, true);
}"""


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def open_notebook(page, lab, timeout=120_000):
    page.goto(lab.url("lab/tree/bench.ipynb"))
    page.wait_for_function("""() => {
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return k && k.status === 'idle';
    }""", timeout=timeout, polling=200)


def run_and_wait_idle(page, index, timeout=300_000):
    page.evaluate(RUN_CELL, index)
    page.wait_for_function("""(i) => {
        const nb = window.jupyterapp.shell.currentWidget;
        const cell = nb.content.widgets[i];
        return cell.model.executionCount !== null && nb.sessionContext.session.kernel.status === 'idle';
    }""", arg=index, timeout=timeout, polling=100)


def measure_ours(page, steps, block):
    page.evaluate(RUN_CELL, 1)
    page.wait_for_function("() => window.__wbFirstPixels && window.__wbFirstPixels.length", timeout=120_000, polling=10)
    first = page.evaluate("() => window.__wbFirstPixels[0] - window.__t0")
    t = time.monotonic()
    page.wait_for_selector('.wb-viewer[data-loaded="1"]', timeout=300_000)
    full = time.monotonic() - t
    page.focus(".wb-viewer")
    page.evaluate("() => { document.querySelector('.wb-viewer').__wb.metrics.length = 0; }")
    for i in range(steps):
        page.keyboard.press("ArrowUp" if (i // block) % 2 == 0 else "ArrowDown")
        page.wait_for_function("(n) => document.querySelector('.wb-viewer').__wb.metrics.length >= n",
                               arg=i + 1, polling=5, timeout=10_000)
    metrics = page.evaluate("() => document.querySelector('.wb-viewer').__wb.metrics")
    return first, [m["drawn"] - m["event"] for m in metrics], full


def measure_plain(page, steps, block):
    page.evaluate(WATCH_PLAIN)
    page.evaluate(RUN_CELL, 2)
    page.wait_for_function("() => window.__plain.first !== null", timeout=120_000, polling=10)
    first = page.evaluate("() => window.__plain.first - window.__t0")
    handle = ".plain-viewer .noUi-handle"
    page.wait_for_selector(handle)
    page.focus(handle)
    for i in range(steps):
        page.keyboard.press("ArrowRight" if (i // block) % 2 == 0 else "ArrowLeft")
        page.wait_for_function("(n) => window.__plain.changes.length >= n", arg=i + 1, timeout=30_000, polling=5)
    return first, page.evaluate("() => window.__plain.changes")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar(["CaseViewer", "Image+slider"], [results["ours"]["first_pixels_ms"], results["baseline"]["first_pixels_ms"]],
          color=["#3b82f6", "#9ca3af"])
    a.axhline(500, color="r", ls="--", lw=1, label="target 500 ms")
    a.set_ylabel("ms"); a.set_title("cell run -> first pixels"); a.legend()
    b.boxplot([results["ours"]["slice_ms"], results["baseline"]["slice_ms"]], showfliers=False)
    b.set_xticks([1, 2], ["CaseViewer", "Image+slider"])
    b.axhline(16, color="r", ls="--", lw=1, label="target p95 16 ms")
    b.set_yscale("log"); b.set_ylabel("ms (log)"); b.set_title("key press -> new slice pixels"); b.legend()
    fig.suptitle(f"CT {results['shape']} int16, headless Chromium, JupyterLab")
    fig.tight_layout(); fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512], metavar=("Z", "Y", "X"))
    ap.add_argument("--steps", type=int, default=100, help="slice changes measured per viewer")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root, work = Path(tempfile.mkdtemp(prefix="wb-bench-")), Path(tempfile.mkdtemp(prefix="wb-bench-srv-"))
    write_notebook(root / "bench.ipynb", SETUP.replace("SHAPE", repr(tuple(args.shape))), OURS, BASELINE)
    lab = Server("lab", root, work)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            guard = OfflineGuard(); guard.attach(page)
            open_notebook(page, lab)
            run_and_wait_idle(page, 0)
            block = max(1, min(50, args.shape[0] // 2 - 1))  # go up, then back down: never past the end
            ours_first, ours_slices, full = measure_ours(page, args.steps, block)
            base_first, base_slices = measure_plain(page, args.steps, block)
            browser.close()
            if guard.blocked:
                raise SystemExit(f"the page tried to leave 127.0.0.1: {guard.blocked}")
    finally:
        lab.stop()
    res = {"shape": list(args.shape), "steps": args.steps, "whole_volume_in_browser_s": round(full, 2),
           "ours": {"first_pixels_ms": ours_first, "slice_ms": ours_slices,
                    "slice_p50_ms": pct(ours_slices, 50), "slice_p95_ms": pct(ours_slices, 95)},
           "baseline": {"first_pixels_ms": base_first, "slice_ms": base_slices,
                        "slice_p50_ms": pct(base_slices, 50), "slice_p95_ms": pct(base_slices, 95)}}
    o, b = res["ours"], res["baseline"]
    print(f"CT {tuple(args.shape)} int16, {args.steps} slice changes each, headless Chromium + JupyterLab")
    print(f"{'':24}{'CaseViewer':>12}{'Image+slider':>14}{'baseline/ours':>15}")
    for name, key in [("first pixels (ms)", "first_pixels_ms"), ("slice change p50 (ms)", "slice_p50_ms"),
                      ("slice change p95 (ms)", "slice_p95_ms")]:
        print(f"{name:24}{o[key]:12.1f}{b[key]:14.1f}{b[key] / o[key]:14.1f}x")
    print(f"whole volume in the browser after first pixels: {full:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "viewer.json").write_text(json.dumps(res, indent=1))
    plot(res, args.out / "viewer.png")
    print(f"wrote {args.out / 'viewer.json'} and {args.out / 'viewer.png'}")
    return res


if __name__ == "__main__":
    main()

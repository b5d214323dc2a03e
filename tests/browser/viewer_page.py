"""Reading a CaseViewer in a page: wait for it, find a voxel's pixel on a plane, press keys."""

from ..waiting import wait_for

VIEWER = ".wb-viewer"


def wait_loaded(page, timeout=60_000):
    page.wait_for_selector(f'{VIEWER}[data-loaded="1"]', timeout=timeout)


def pixel(page, plane: str, x: int, y: int, z: int) -> list[int]:
    """RGBA on screen at the centre of voxel (x, y, z) on `plane` (a voxel of the current slice)."""
    return page.evaluate("""([plane, x, y, z]) => {
        const v = document.querySelector('.wb-viewer').__wb;
        const [cx, cy] = v.clientOf(plane, x, y, z);
        const cv = v.cells[plane].canvas, r = cv.getBoundingClientRect(), dpr = cv.width / r.width;
        const d = cv.getContext('2d').getImageData(Math.floor((cx - r.left) * dpr), Math.floor((cy - r.top) * dpr), 1, 1).data;
        return Array.from(d);
    }""", [plane, x, y, z])


def dataset(page, key: str) -> str:
    return page.eval_on_selector(VIEWER, f"el => el.dataset.{key}")


def wait_attr(page, key: str, value: str, timeout=10):
    wait_for(lambda: dataset(page, key) == value, timeout, 0.05, f"viewer data-{key} == {value!r}")


def open_in_lab(page, lab, path: str, timeout=90_000) -> None:
    """Open the notebook at `path` (under the Lab server's URL) and run it once its kernel is up;
    wait for the viewer to load. Retried, as running the cells is a no-op before the kernel is idle."""
    page.goto(lab.url(path))
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90_000)
    page.wait_for_function("""() => {
        const app = window.jupyterapp, w = app.shell.currentWidget;
        if (!w || !w.sessionContext || !w.sessionContext.session || !w.sessionContext.session.kernel) return false;
        if (w.sessionContext.session.kernel.status !== 'idle') return false;
        if (!window.__ran) { window.__ran = true; app.commands.execute('notebook:run-all-cells'); }
        return true;
    }""", timeout=90_000, polling=250)
    wait_loaded(page, timeout=timeout)

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

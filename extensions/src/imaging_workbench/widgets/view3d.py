"""3-D companion view: ipyniivue (three planes plus a volume rendering) fed from memory.

`view_3d(volume)` needs no file and no network: the volume is written as NIfTI bytes in memory
and handed to ipyniivue, whose JavaScript ships in its wheel. `backend="itkwidgets"` is for
deployments online only; without itkwidgets, or with its web assets out of reach, it raises
a WorkbenchError saying so instead of drawing an empty cell.
"""

import struct
import urllib.request

import numpy as np

from ..errors import WorkbenchError
from .inputs import as_labels, as_volume

#: itkwidgets 1.x loads its viewer from this host at run time (upstream issue itkwidgets#776).
ITK_ASSETS_URL = "https://itk.org/itk-viewer/"
_NIFTI_TYPES = {np.dtype(np.uint8): (2, 8), np.dtype(np.int16): (4, 16), np.dtype(np.float32): (16, 32)}


def nifti_bytes(array: np.ndarray, affine_ras: np.ndarray, spacing_zyx) -> bytes:
    """A single-file NIfTI-1 image (.nii) of a (z, y, x) array with an sform in RAS+ mm.

    Raises:
        ValueError: an array that is not 3-D, or a type other than uint8, int16 or float32.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"NIfTI export needs a 3-D (z, y, x) array, got shape {array.shape}")
    if array.dtype not in _NIFTI_TYPES:
        array = array.astype(np.float32)
    code, bits = _NIFTI_TYPES[array.dtype]
    nz, ny, nx = array.shape
    sz, sy, sx = (float(s) for s in spacing_zyx)
    hdr = bytearray(352)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<2h", hdr, 70, code, bits)
    struct.pack_into("<8f", hdr, 76, 1.0, sx, sy, sz, 0, 0, 0, 0)
    struct.pack_into("<3f", hdr, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    hdr[123] = 2  # xyzt_units: mm
    struct.pack_into("<2h", hdr, 252, 0, 1)  # qform_code, sform_code (scanner)
    a = np.asarray(affine_ras, dtype=np.float64)
    for i, off in enumerate((280, 296, 312)):
        struct.pack_into("<4f", hdr, off, *a[i])
    hdr[344:348] = b"n+1\0"
    # NIfTI stores x fastest: exactly a C-ordered (z, y, x) array.
    return bytes(hdr) + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def view_3d(series, segmentation=None, backend: str = "niivue", height: int = 420, window=None):
    """A three-plane-plus-render view of a Volume (or anything CaseViewer accepts).

    Args:
        segmentation: a label array of the volume's shape, drawn as a coloured overlay.
        backend: "niivue" (default, offline) or "itkwidgets" (needs the web).
        window: (width, level) for the grey scale; default: a soft-tissue window for CT,
            the 1st..99th percentiles otherwise.
    Raises:
        WorkbenchError: itkwidgets missing, too old, or its assets unreachable.
        ValueError: unknown backend, or a segmentation of the wrong shape.
    """
    volume = as_volume(series)
    labels = None if segmentation is None else as_labels(segmentation, volume.array.shape)[0]
    if backend == "niivue":
        return _niivue(volume, labels, height, window)
    if backend == "itkwidgets":
        return _itkwidgets(volume, labels)
    raise ValueError(f"unknown 3-D backend {backend!r}; use 'niivue' or 'itkwidgets'")


def _niivue(volume, labels, height, window):
    from ipyniivue import NiiVue, SliceType
    from ipyniivue import Volume as NVVolume

    from .windowing import CT_PRESETS, auto_window

    width, level = window or (CT_PRESETS["mediastinum"] if volume.modality.upper() == "CT"
                              else auto_window(volume.array))
    layers = [NVVolume(data=nifti_bytes(volume.array, volume.affine_ras, volume.spacing), name="image.nii",
                       colormap="gray", cal_min=level - width / 2, cal_max=level + width / 2)]
    if labels is not None and labels.any():
        layers.append(NVVolume(data=nifti_bytes(labels, volume.affine_ras, volume.spacing), name="labels.nii",
                               colormap="red", opacity=0.5, cal_min=0.5, cal_max=float(labels.max())))
    nv = NiiVue(height=height)
    nv.load_volumes(layers)
    nv.set_slice_type(SliceType.MULTIPLANAR)
    return nv


def _itkwidgets(volume, labels, assets_url: str = ITK_ASSETS_URL, timeout: float = 3.0):
    try:
        import itkwidgets
    except ImportError:
        raise WorkbenchError("the itkwidgets 3-D backend is not installed in this environment",
                             "use view_3d(..., backend='niivue'), which works offline; itkwidgets only "
                             "works where the internet is reachable") from None
    version = getattr(itkwidgets, "__version__", "0")
    if int(version.split(".")[0]) < 1:
        raise WorkbenchError(f"itkwidgets {version} needs ipywidgets 7 and does not run in JupyterLab 4",
                             "use view_3d(..., backend='niivue')")
    if not _reachable(assets_url, timeout):
        raise WorkbenchError(f"itkwidgets loads its viewer from {assets_url}, which is not reachable from here",
                             "this sandbox is offline by design: use view_3d(..., backend='niivue')")
    return itkwidgets.view(volume.array, label_image=labels)


def _reachable(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except OSError:
        return False

"""CaseViewer: a three-plane CT/MR viewer whose drawing and windowing happen in the browser.

The kernel sends voxels once, as binary buffers: first the three planes through the current
position (so something is on screen at once), then the whole volume in chunks of slices
nearest the current one first. After that, scrolling, windowing, zoom and the overlay never
wait for the kernel. Slice indices and window/level stay traits that sync both ways.
"""

import logging
import uuid
from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

from ..errors import WorkbenchError
from .inputs import as_labels, as_volume, axis_letters, display_array
from .windowing import presets_for

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
CHUNK_BYTES = 4 << 20


class CaseViewer(anywidget.AnyWidget):
    """Axial, coronal and sagittal planes of one series, with an optional segmentation overlay.

    Args:
        series: a `imaging_workbench.dicom.Volume`, a 3-D (z, y, x) numpy array, or anything
            `imaging_workbench.dicom.load_series` accepts (folder, list of files, (session, uid)).
        segmentation: None, a label array of the volume's shape, a (labels, segments) pair,
            or a DICOM SEG source for `imaging_workbench.dicom.load_segmentation`.

    `volume` is the Volume shown (None when it failed to load); `tool_result` the ToolResult
    of the last `show_tool_result` (None before any).

    A series or segmentation that fails to load (a WorkbenchError from the loader, or a missing
    or unreadable path) does not raise: the message is shown inside the widget (trait `error`)
    so a dashboard keeps working. Wrong arguments (a 2-D array, a mask of the wrong shape) raise.
    """

    _esm = STATIC / "viewer.js"
    _css = STATIC / "viewer.css"

    shape = t.List(t.Int(), default_value=[0, 0, 0], help="(z, y, x) voxels").tag(sync=True)
    spacing = t.List(t.Float(), default_value=[1.0, 1.0, 1.0], help="(z, y, x) mm").tag(sync=True)
    affine = t.List(t.Float(), default_value=list(np.eye(4).ravel()),
                    help="row-major 4x4: voxel (x, y, z, 1) -> patient LPS mm").tag(sync=True)
    axis_letters = t.List(t.Unicode(), default_value=["L", "P", "S"],
                          help="patient direction in which x, y, z indices increase").tag(sync=True)
    dtype = t.Unicode("int16", help="voxel type of the buffers: int16 or float32").tag(sync=True)
    modality = t.Unicode("").tag(sync=True)
    unit = t.Unicode("", help="'HU' for CT, empty otherwise").tag(sync=True)
    title = t.Unicode("").tag(sync=True)

    slice = t.Int(0, help="axial slice index (z)").tag(sync=True)
    coronal = t.Int(0, help="coronal plane index (y)").tag(sync=True)
    sagittal = t.Int(0, help="sagittal plane index (x)").tag(sync=True)
    window = t.Float(400.0).tag(sync=True)
    level = t.Float(40.0).tag(sync=True)
    preset = t.Unicode("", help="name of the window/level preset, or 'custom'").tag(sync=True)
    presets = t.Dict(help="name -> [window, level]").tag(sync=True)

    segments = t.List(t.Dict(), help="[{number, label, color}] of the overlay").tag(sync=True)
    visible_segments = t.List(t.Int(), help="segment numbers drawn on the overlay").tag(sync=True)
    overlay_opacity = t.Float(0.4, min=0.0, max=1.0).tag(sync=True)
    mask_version = t.Int(0, help="bumped whenever the overlay's voxels change").tag(sync=True)

    viewer_id = t.Unicode(help="unique id the browser keys its voxel store by").tag(sync=True)
    size = t.Int(300, help="edge of each plane in CSS pixels").tag(sync=True)
    error = t.Unicode("", help="a load error shown in place of (or above) the images").tag(sync=True)

    def __init__(self, series=None, segmentation=None, **kwargs):
        super().__init__(viewer_id=uuid.uuid4().hex, **kwargs)
        self.volume = None
        self._array = None
        self._labels = None
        self._stored = None  # (labels, segments) of the stored SEG: a tool's layer goes beside it
        self.tool_result = None
        self._frontend_ready = False  # nothing is sent before a browser asks: no one would read it
        self._answered = set()  # tokens of the browsers' "ready" requests already answered
        self.on_msg(self._on_frontend_msg)
        try:
            if series is None:
                raise WorkbenchError("no series given", "pass a Volume, an array or a series folder")
            self._set_volume(as_volume(series))
        except (WorkbenchError, OSError) as e:  # the loader's errors, and missing/unreadable paths
            self.error = str(e)
            return
        if segmentation is not None:
            self._set_segmentation(segmentation)

    # --- Python API -------------------------------------------------------------------------

    def show_mask(self, mask, segments=None, opacity: float | None = None) -> None:
        """Overlay a label mask (for example a model's output) of the volume's (z, y, x) shape.

        Raises:
            ValueError: the mask's shape differs from the volume's, or its labels are not 0..255.
            RuntimeError: the viewer has no volume (it failed to load).
        """
        if self._array is None:
            raise RuntimeError("this viewer has no volume to overlay a mask on" +
                               (f" (it failed to load: {self.error})" if self.error else ""))
        labels, segs = as_labels(mask, self._array.shape, segments)
        self._labels = labels
        with self.hold_sync():
            self.segments = segs
            self.visible_segments = [s["number"] for s in segs]
            if opacity is not None:
                self.overlay_opacity = opacity
            self.mask_version += 1
        self._send_mask()

    def show_tool_result(self, result) -> None:
        """Overlay an AI tool's labels (a `ToolResult`) beside the stored SEG's segments.

        One label map holds three kinds of segment, each with its own toggle: the stored SEG's
        segments (their numbers, where only the SEG marks a voxel), the tool's segments
        ("tumour (tumour-seg 1.0.0)", where only the tool marks it) and, where a SEG segment and a
        tool segment overlap, one segment per pair: "Tumour 1: SEG and tumour-seg agree" when the
        two name the same structure (case and a trailing number aside), else "Lung (SEG) overlaps
        tumour (tumour-seg)". Without a stored SEG the tool's segments alone. A later call replaces
        the previous tool's layer; the stored SEG stays.

        Raises:
            ValueError: the result's labels are on another grid (both shapes named), or the layers
                need more than 255 segment numbers.
            RuntimeError: the viewer has no volume.
        """
        if self._array is None:
            raise RuntimeError("this viewer has no volume to overlay a tool's result on" +
                               (f" (it failed to load: {self.error})" if self.error else ""))
        labels = np.asarray(result.labels)
        other = getattr(result, "volume", None)
        if labels.shape != self._array.shape or (
                other is not None and self.volume is not None and other is not self.volume
                and not np.allclose(np.asarray(other.affine, float), np.asarray(self.volume.affine, float), atol=1e-3)):
            raise ValueError(f"the result of {result.tool.get('id')} {result.tool.get('version')} is on another "
                             f"grid: labels {labels.shape}, this viewer's series {tuple(self._array.shape)} (or "
                             "another position or orientation); run the tool on the series this viewer shows")
        from .tool_menu import tool_layer

        combined, segments = tool_layer(self._stored, labels, result.segments, result.tool)
        self.tool_result = result
        self.show_mask(combined, segments)

    def clear_mask(self) -> None:
        """Remove the overlay (the stored SEG is kept for a later `show_tool_result`)."""
        self._labels = None
        with self.hold_sync():
            self.segments, self.visible_segments = [], []
            self.mask_version += 1
        if self._frontend_ready:
            self.send({"type": "mask_clear", "version": self.mask_version})

    def set_preset(self, name: str) -> None:
        """Apply a window/level preset by name (see `presets`)."""
        if name not in self.presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(self.presets)}")
        self.preset = name

    # --- state ------------------------------------------------------------------------------

    def _set_volume(self, volume) -> None:
        array = display_array(volume.array)
        presets, default = presets_for(volume.modality, array)
        z, y, x = array.shape
        self.volume, self._array = volume, array
        with self.hold_sync():
            self.shape = [z, y, x]
            self.spacing = [float(s) for s in volume.spacing]
            self.affine = [float(v) for v in np.asarray(volume.affine).ravel()]
            self.axis_letters = axis_letters(volume.direction)
            self.dtype = "int16" if array.dtype == np.int16 else "float32"
            self.modality = volume.modality
            self.unit = "HU" if volume.modality.upper() == "CT" else ""
            self.title = " · ".join(p for p in (volume.patient_id, volume.modality, volume.description) if p)
            self.slice, self.coronal, self.sagittal = z // 2, y // 2, x // 2
            self.presets = presets
            self.preset = default
            self.window, self.level = presets[default]

    def _set_segmentation(self, segmentation) -> None:
        try:
            if isinstance(segmentation, tuple) and len(segmentation) == 2 and isinstance(segmentation[0], np.ndarray):
                labels, segments = segmentation
            elif isinstance(segmentation, np.ndarray):
                labels, segments = segmentation, None
            else:
                from ..dicom import load_segmentation

                labels, segments = load_segmentation(segmentation, self.volume)
        except (WorkbenchError, OSError) as e:
            self.error = f"segmentation not shown: {e}"
            return
        self.show_mask(labels, segments)
        self._stored = (self._labels, [dict(s) for s in self.segments])

    @t.validate("slice", "coronal", "sagittal")
    def _clamp_index(self, proposal):
        axis = {"slice": 0, "coronal": 1, "sagittal": 2}[proposal.trait.name]
        n = self.shape[axis]
        value = int(proposal.value)
        if n and not 0 <= value < n:
            raise t.TraitError(f"CaseViewer.{proposal.trait.name}={value} is outside 0..{n - 1}")
        return value

    @t.observe("preset")
    def _apply_preset(self, change):
        if change.new in self.presets:
            self.window, self.level = self.presets[change.new]

    @t.validate("window")
    def _positive_window(self, proposal):
        if proposal.value <= 0:
            raise t.TraitError(f"CaseViewer.window must be > 0, got {proposal.value}")
        return float(proposal.value)

    # --- messages to the browser --------------------------------------------------------------

    def _on_frontend_msg(self, _widget, content, _buffers):
        if isinstance(content, dict) and content.get("type") == "ready":
            token = content.get("token")
            if token is not None and token in self._answered:
                return  # a retry of a request already answered
            self._answered.add(token)
            self._frontend_ready = True
            self._send_volume()

    def _planes(self, array: np.ndarray) -> list[memoryview]:
        z, y, x = self.slice, self.coronal, self.sagittal
        return [memoryview(np.ascontiguousarray(p)) for p in (array[z], array[:, y, :], array[:, :, x])]

    def _chunks(self, array: np.ndarray):
        """(z0, z1) ranges of about CHUNK_BYTES, the ones nearest the current slice first."""
        nz = array.shape[0]
        per = max(1, CHUNK_BYTES // max(1, array[0].nbytes))
        ranges = [(z0, min(nz, z0 + per)) for z0 in range(0, nz, per)]
        return sorted(ranges, key=lambda r: abs((r[0] + r[1]) / 2 - self.slice))

    def _send_volume(self) -> None:
        """Current planes first, then the volume in chunks, then the overlay."""
        if self._array is None:
            return
        a = self._array
        self.send({"type": "planes", "index": [self.slice, self.coronal, self.sagittal]}, self._planes(a))
        for z0, z1 in self._chunks(a):
            self.send({"type": "chunk", "z0": z0, "z1": z1}, [memoryview(a[z0:z1])])
        self._send_mask()

    def _send_mask(self) -> None:
        if self._labels is None or not self._frontend_ready:
            return
        v = self.mask_version
        self.send({"type": "mask_planes", "version": v, "index": [self.slice, self.coronal, self.sagittal]},
                  self._planes(self._labels))
        for z0, z1 in self._chunks(self._labels):
            self.send({"type": "mask_chunk", "version": v, "z0": z0, "z1": z1}, [memoryview(self._labels[z0:z1])])

"""Running an approved tool on one series: labels on the series' own grid, and what made them.

The series goes in as the Volume the workbench already loaded, turned into the MetaTensor that
MONAI's LoadImage would give (`dicom.export.to_metatensor`: (x, y, z), RAS affine). So the card's
`LoadImaged` step is replaced, not run: it would re-read files the Volume already holds, and its
readers (ITK, pydicom) may order and orient DICOM slices differently from our loader. The stand-in
keeps what LoadImaged's own args ask for (dtype, ensure_channel_first), so the card's later steps
see the same input, and `Invertd` (which undoes only invertible steps; LoadImaged is not one) brings
the prediction back onto the series' grid. That grid is checked, not assumed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dicom.volume import Volume
from .card import ToolRefused, label, read_card
from .cpu_layout import windows_runner
from .loader import approved_card, load_tool
from .run_checks import check_runnable
from .separable_resample import separable_resampling


@dataclass
class ToolResult:
    """A tool's labels on a series' grid: `labels` (z, y, x) like `volume.array`, 0 = none.

    `segments` are [{"number", "label"}] from the card's output channel_def (channel 0, the
    background, is none); `tool` is {"id", "version", "weights_sha256"}.
    """

    labels: np.ndarray
    segments: list[dict]
    tool: dict
    volume: Volume = field(repr=False)

    def save_seg(self, folder: str | Path | None = None) -> Path:
        """Write the labels as a DICOM SEG (default: ~/tool-results/<tool>/<series uid>.dcm); see
        segmentation_output.save_seg."""
        from .segmentation_output import save_seg

        return save_seg(self, folder)

    def measurements(self, features: bool = False):
        """Per segment: voxels, volume in ml, mean/min/max intensity inside (a pandas DataFrame);
        `features=True` adds IBSI radiomics features by mirp (slower; see tools/radiomics.py)."""
        from .measurements import measure

        return measure(self.labels, self.segments, self.volume, features=features)


def as_volume(series) -> Volume:
    """`series` itself if a Volume, else whatever `dicom.load_series` accepts, loaded."""
    if isinstance(series, Volume):
        return series
    from ..dicom.loader import load_series

    return load_series(series)


def output_segments(card: dict) -> list[dict]:
    """The card's output channels as segments, background (channel 0) left out; a single
    (sigmoid) channel is the one foreground segment, label value 1."""
    output = card["io"]["outputs"]["pred"]
    channels = output.get("channel_def", {})
    if output.get("num_channels") == 1:
        return [{"number": 1, "label": str(channels.get("0", "foreground"))}]
    return [{"number": int(k), "label": str(v)} for k, v in sorted(channels.items(), key=lambda kv: int(kv[0]))
            if int(k) != 0]


def _input(volume: Volume, card: dict, preprocessing):
    """The data dict the card's preprocessing starts from, and that preprocessing without LoadImaged."""
    import torch
    from monai.transforms import Compose, EnsureChannelFirst

    from ..dicom.export import to_metatensor

    image = to_metatensor(volume, channel_first=False, copy=False)  # the card's steps make new tensors
    # build_transforms makes one transform per card step, in order: the card's index is the Compose's.
    at = next((i for i, step in enumerate(card["preprocessing"]) if step["name"] == "LoadImaged"), None)
    args = card["preprocessing"][at].get("args", {}) if at is not None else {}
    # What LoadImaged(dtype=float32, ensure_channel_first=False) would have produced; a card without
    # LoadImaged expects the image as given: float32, channel first.
    dtype = args.get("dtype", "float32")
    if dtype is not None:
        image = image.to(getattr(torch, np.dtype(dtype).name))
    if at is None or args.get("ensure_channel_first", False):
        image = EnsureChannelFirst()(image)
    rest = Compose([t for i, t in enumerate(preprocessing.transforms) if i != at])
    return {"image": image}, rest


def predict(network, preprocessing, postprocessing, card: dict, volume: Volume, device: str) -> np.ndarray:
    """The card's pipeline on `volume`: its labels (z, y, x) on the volume's grid, as uint8/uint16.

    Raises:
        ToolRefused: the postprocessing leaves the prediction on another grid (no Invertd for a
            preprocessing that resamples or crops).
    """
    import torch
    from monai.inferers import sliding_window_inference

    data, steps = _input(volume, card, preprocessing)
    window = card["inference"]
    # Windows run on `device` (on the CPU in cpu_layout's faster layout), the whole prediction is
    # stitched in CPU memory: a large series need not fit on the GPU.
    with torch.inference_mode(), separable_resampling(), windows_runner(network, card, device) as run:
        data = steps(data)
        pred = sliding_window_inference(data["image"][None], window["roi_size"], window["sw_batch_size"], run,
                                        overlap=window["overlap"], sw_device=device, device="cpu")
        data["pred"] = pred[0]
        pred = postprocessing(data)["pred"]
    return _on_grid(pred, card, volume)


def _on_grid(pred, card: dict, volume: Volume) -> np.ndarray:
    """(C, x, y, z) scores or labels -> labels (z, y, x), refused unless on the volume's grid."""
    pred = pred.detach().cpu()
    affine = getattr(pred, "affine", None)
    values = pred.numpy()
    labels = values.argmax(0) if values.shape[0] > 1 else np.rint(values[0])  # scores, or AsDiscreted's labels
    if labels.shape[::-1] != volume.array.shape or (affine is not None and not np.allclose(
            np.asarray(affine, float), volume.affine_ras, atol=1e-3)):
        raise ToolRefused(f"{label(card)}: its postprocessing leaves the prediction on a grid other than the "
                          f"series' (shape {labels.shape[::-1]}, the series' {volume.array.shape}; or flipped, "
                          "shifted or resampled)",
                          "the card's postprocessing must invert its preprocessing (Invertd with orig_keys "
                          "['image']) before AsDiscreted")
    return _zyx(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))


def _zyx(xyz: np.ndarray) -> np.ndarray:
    """A C-contiguous (z, y, x) copy of an (x, y, z) array, one (x, z) plane transposed per y: 3x
    faster than numpy's 3-D transpose copy, whose reads stride across the whole volume (0.25 vs
    0.72 s for 512x512x300 uint8)."""
    out = np.empty(xyz.shape[::-1], xyz.dtype)
    for y in range(xyz.shape[1]):
        out[:, y, :] = xyz[:, y, :].T
    return out


def run_tool(folder: Path, catalog_file: Path, series, memory_limit: int | None, device: str | None = None
             ) -> ToolResult:
    """Run the approved tool in `folder` (`<tools>/<id>/<version>`) on one series.

    Args:
        folder: the tool's read-only folder.
        catalog_file: the catalogue of approved tools.
        series: a Volume, or what `dicom.load_series` accepts (a folder, files, (session, uid)).
        memory_limit: the sandbox's memory in bytes (None: no limit).
        device: "cpu" or "cuda"; default the GPU when there is one.

    Raises:
        ToolRefused: a draft or retired tool, a series it does not take (modality, channels,
            spacing), memory or a GPU it needs and lacks (all before anything is loaded), weights
            that differ from the card; each naming the tool and what to do.
    """
    import torch

    card = approved_card(catalog_file, read_card(folder))
    volume = as_volume(series)
    gpu = torch.cuda.is_available()
    check_runnable(card, volume, memory_limit, gpu)
    network, preprocessing, postprocessing, card = load_tool(folder, catalog_file)
    labels = predict(network, preprocessing, postprocessing, card, volume, device or ("cuda" if gpu else "cpu"))
    return ToolResult(labels=labels, segments=output_segments(card), volume=volume,
                      tool={"id": card["id"], "version": card["version"], "weights_sha256": card["weights"]["sha256"]})

"""Window/level presets and the automatic window for images without a calibrated scale."""

import numpy as np

#: CT presets as (window width, window level) in Hounsfield units.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (1500.0, -600.0),
    "mediastinum": (350.0, 50.0),
    "bone": (2000.0, 500.0),
    "liver": (150.0, 30.0),
    "brain": (80.0, 40.0),
}
CT_DEFAULT = "mediastinum"


def auto_window(array: np.ndarray, low: float = 1.0, high: float = 99.0,
                max_samples: int = 1_000_000) -> tuple[float, float]:
    """Window and level spanning the `low`..`high` percentiles of the voxel values.

    Samples at most `max_samples` voxels on a regular stride so a 300-slice series takes
    milliseconds. A constant image gets a window of 1 centred on its value.

    Raises:
        ValueError: when `array` is empty or the percentiles are not 0 <= low < high <= 100.
    """
    if array.size == 0:
        raise ValueError(f"cannot compute a window for an empty array of shape {array.shape}")
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}")
    flat = array.reshape(-1)
    step = max(1, flat.size // max_samples)
    lo, hi = np.percentile(flat[::step], [low, high])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        return 1.0, lo
    return hi - lo, (hi + lo) / 2.0


def presets_for(modality: str, array: np.ndarray) -> tuple[dict[str, list[float]], str]:
    """The presets offered for a modality and the one shown first.

    CT gets the fixed clinical presets plus "auto"; every other modality gets "auto" only
    (MR intensities have no absolute scale).
    """
    auto = list(auto_window(array))
    if modality.upper() == "CT":
        presets = {name: list(wl) for name, wl in CT_PRESETS.items()}
        presets["auto"] = auto
        return presets, CT_DEFAULT
    return {"auto": auto}, "auto"

"""Whether an approved tool may run on a series here, decided before anything is loaded or inferred.

Each check reads the approved card and the series' Volume only, and refuses with a `ToolRefused`
naming the tool, the value that does not fit and what to do. The sandbox's memory comes from its
cgroup (`memory.max`), read when a tool is about to run, never at import.
"""

from pathlib import Path

from ..deployment import parse_memory
from ..dicom.volume import Volume
from .card import ToolRefused, label

CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")  # cgroup v2: bytes, or "max" for no limit


def sandbox_memory_limit(path: Path = CGROUP_MEMORY_MAX) -> int | None:
    """The memory this sandbox may use, in bytes; None when there is no limit or no cgroup file."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return None if text in ("", "max") else int(text)


def check_modality(card: dict, volume: Volume) -> None:
    """Refuse a series of another modality than the card's (a CT tool on an MR series)."""
    if volume.modality != card["modality"]:
        raise ToolRefused(f"{label(card)} is for {card['modality']} series; series {volume.series_uid} is "
                          f"{volume.modality or 'of no modality'}",
                          f"choose a tool for {volume.modality} (Tools().list()), or a {card['modality']} series")


def check_channels(card: dict, volume: Volume) -> None:
    """Refuse a tool that needs more than the one channel a single series gives (e.g. T1 + T2 + FLAIR)."""
    image = card["io"]["inputs"]["image"]
    needed = int(image.get("num_channels", 1))
    if needed != 1:
        names = ", ".join(str(v) for v in image.get("channel_def", {}).values()) or "not named"
        raise ToolRefused(f"{label(card)} needs {needed} input channels ({names}); series {volume.series_uid} "
                          f"gives 1", "run a tool that takes one series, or combine the series into one input "
                          "yourself and run the tool's network on it")


def check_spacing(card: dict, volume: Volume) -> None:
    """Refuse a series whose voxel spacing lies outside what the card's input declares.

    The declaration is optional: `io.inputs.image.spacing = {"min": [x, y, z], "max": [x, y, z]}` in mm,
    in MONAI's (x, y, z) pixdim order (a null bound is no bound). A tool that resamples (Spacingd)
    declares nothing and takes any spacing.
    """
    declared = card["io"]["inputs"]["image"].get("spacing")
    if not declared:
        return
    sz, sy, sx = volume.spacing
    for axis, value, low, high in zip("xyz", (sx, sy, sz), declared.get("min", [None] * 3),
                                      declared.get("max", [None] * 3)):
        if (low is not None and value < low) or (high is not None and value > high):
            raise ToolRefused(f"{label(card)} takes {axis} spacing {_range(low, high)}; series "
                              f"{volume.series_uid} has {value:.3g} mm",
                              "resample the series to the tool's spacing first, or choose a tool trained at this "
                              "spacing")


def _range(low, high) -> str:
    if low is None:
        return f"of at most {high} mm"
    return f"of at least {low} mm" if high is None else f"of {low}-{high} mm"


def check_resources(card: dict, memory_limit: int | None, gpu_available: bool) -> None:
    """Refuse a card needing more memory than `memory_limit` (bytes; None: no limit), or a GPU where
    there is none."""
    need = parse_memory(card["needs"]["memory"])
    if memory_limit is not None and need > memory_limit:
        raise ToolRefused(f"{label(card)} needs {card['needs']['memory']} of memory; this sandbox has "
                          f"{memory_limit / 1024**3:.2f} GiB", "start your server with a larger profile, "
                          "or choose a smaller tool")
    if card["needs"]["gpu"] and not gpu_available:
        raise ToolRefused(f"{label(card)} needs a GPU; this sandbox has none",
                          "start your server with a GPU profile")


def check_runnable(card: dict, volume: Volume, memory_limit: int | None, gpu_available: bool) -> None:
    """Every check above, cheapest first.

    Raises:
        ToolRefused: the first that fails, naming the tool and what to do.
    """
    check_modality(card, volume)
    check_channels(card, volume)
    check_spacing(card, volume)
    check_resources(card, memory_limit, gpu_available)

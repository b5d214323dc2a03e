"""Resampling between grids that differ only by a scale and shift along each axis, one axis at a
time: a tool's Spacingd, and the Invertd that brings its labels back.

MONAI resamples through `affine_grid` and `grid_sample`: a coordinate triple per output voxel
(about a gigabyte for a 512x512x300 series) and a 3-D gather. When the two grids are axis-aligned
with each other (a Spacingd on a series in its own orientation), trilinear interpolation is three
1-D linear interpolations, each a gather along one axis: the same values to float rounding (1e-7
from MONAI's), with no coordinate grid. Any other resampling goes to MONAI's own.
"""

from contextlib import contextmanager

# What Spacing (bilinear) and Invertd (nearest) ask for by default; other modes go to MONAI.
MODES, PADDING = ("bilinear", "nearest"), "border"


def _take(x, axis: int, index):
    """x.index_select(axis, index) by advanced indexing: index_select copies element by element
    along an axis adjacent in memory, or strided (6.7 against 0.8 s for 512x512x300)."""
    return x[(slice(None),) * axis + (index,)]


def _linear_axis(x, axis: int, size: int, scale: float, shift: float):
    """`x` resampled linearly along `axis` to `size` points at source voxel coordinates
    scale * i + shift, clamped to the first and last voxel (border padding)."""
    import torch

    n = x.shape[axis]
    at = (torch.arange(size, dtype=torch.float64, device=x.device) * scale + shift).clamp(0, n - 1)
    low = at.floor().long()
    weight = (at - low).to(x.dtype)
    high = (low + 1).clamp(max=n - 1)
    shape = [1] * x.ndim
    shape[axis] = size
    return torch.lerp(_take(x, axis, low), _take(x, axis, high), weight.view(shape))


def _nearest_axis(monai_transform, x, axis: int, size: int, theta):
    """`x` resampled along `axis` to `size` points by nearest voxel. Which voxel MONAI picks where a
    coordinate falls halfway (every sixth slice from 3 mm back to 1.25 mm) depends on its float32
    arithmetic, so MONAI's own transform picks them, on a ramp of voxel indices along that axis only."""
    import torch

    n = x.shape[axis + 2]
    probe = torch.eye(4, dtype=theta.dtype, device=theta.device)
    probe[axis, axis], probe[axis, 3] = theta[axis, axis], theta[axis, 3]
    ramp_shape, out_shape = [1, 1, 1, 1, 1], [1, 1, 1]
    ramp_shape[axis + 2], out_shape[axis] = n, size
    ramp = torch.arange(n, dtype=x.dtype, device=x.device).view(ramp_shape)
    picked = monai_transform(ramp, theta=probe, spatial_size=out_shape).reshape(-1)
    return _take(x, axis + 2, torch.round(picked).long())


class _SeparableAffine:
    """Stands in for monai.networks.layers.AffineTransform as monai.transforms.spatial.functional
    builds it: axis-aligned voxel-to-voxel transforms it resamples itself, the rest MONAI does."""

    def __init__(self, monai_class, **kwargs):
        self.monai = monai_class(**kwargs)
        self.mode = str(getattr(kwargs.get("mode"), "value", kwargs.get("mode")))
        self.separable = (kwargs.get("normalized") is False and kwargs.get("reverse_indexing", True)
                          and self.mode in MODES
                          and str(getattr(kwargs.get("padding_mode"), "value", kwargs.get("padding_mode"))) == PADDING
                          and kwargs.get("align_corners") is False)

    def __call__(self, src, theta, spatial_size=None):
        import torch

        if not self.separable or src.ndim != 5 or spatial_size is None or theta.ndim != 2:
            return self.monai(src, theta=theta, spatial_size=spatial_size)
        linear = theta[:3, :3].double()
        if (linear - torch.diag(torch.diagonal(linear))).abs().max() > 1e-6:  # rotated or sheared
            return self.monai(src, theta=theta, spatial_size=spatial_size)
        out, sizes = src, [int(s) for s in spatial_size]
        # Shrinking axes first, growing ones last: the intermediate arrays stay small.
        for axis in sorted(range(3), key=lambda a: sizes[a] / src.shape[a + 2]):
            if self.mode == "nearest":
                out = _nearest_axis(self.monai, out, axis, sizes[axis], theta)
            else:
                out = _linear_axis(out, axis + 2, sizes[axis], float(theta[axis, axis]), float(theta[axis, 3]))
        return out


@contextmanager
def separable_resampling():
    """For the duration, MONAI's spatial resampling (Spacing, its inverse) runs axis-aligned grid
    changes separably. Not for threads that run other MONAI transforms meanwhile."""
    from functools import partial

    from monai.transforms.spatial import functional

    real = functional.AffineTransform
    functional.AffineTransform = partial(_SeparableAffine, real)
    try:
        yield
    finally:
        functional.AffineTransform = real

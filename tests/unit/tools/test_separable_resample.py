"""A tool's Spacingd (bilinear) and Invertd (nearest) resampled one axis at a time give MONAI's
own values (to float rounding) without MONAI's coordinate grid; a rotated grid change still goes to
MONAI."""

import math

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Spacingd

from imaging_workbench.tools.separable_resample import separable_resampling


def _series(affine):
    torch.manual_seed(0)
    return {"image": MetaTensor(torch.rand(1, 60, 50, 24), affine=torch.as_tensor(affine, dtype=torch.float64))}


def _there_and_back(data):
    """Spacingd to a coarser grid, a stand-in prediction on it, Invertd back onto the series' grid."""
    preprocessing = Compose([Spacingd(keys="image", pixdim=(2.82, 2.82, 3.0), mode="bilinear")])
    data = preprocessing(data)
    data["pred"] = data["image"] * 2 - 0.5
    return data["image"], Invertd(keys="pred", transform=preprocessing, orig_keys="image")(data)["pred"]


@pytest.fixture
def grids_made(monkeypatch):
    """The number of points of each coordinate grid MONAI builds (affine_grid)."""
    sizes = []
    real = torch.nn.functional.affine_grid

    def counted(theta, size, *args, **kwargs):
        sizes.append(math.prod(size[2:]))
        return real(theta, size, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "affine_grid", counted)
    return sizes


def test_an_axis_aligned_spacing_and_its_inverse_match_monai_without_a_grid(grids_made):
    affine = [[-0.75, 0, 0, 10.0], [0, -0.75, 0, -20.0], [0, 0, 1.25, 30.0], [0, 0, 0, 1]]
    monai_down, monai_back = _there_and_back(_series(affine))
    assert grids_made == [17 * 14 * 11, 60 * 50 * 24]
    with separable_resampling():
        ours_down, ours_back = _there_and_back(_series(affine))
    assert sorted(grids_made[2:]) == [24, 50, 60]  # only the line per axis on which MONAI picks the nearest voxels
    assert ours_down.shape == monai_down.shape and ours_back.shape == monai_back.shape == (1, 60, 50, 24)
    assert torch.allclose(ours_down.affine, monai_down.affine) and torch.allclose(ours_back.affine, monai_back.affine)
    # The nearest voxel back: the same voxels (a tie within rounding would differ by a whole voxel).
    assert (ours_down - monai_down).abs().max() < 1e-6 and (ours_back - monai_back).abs().max() < 1e-5


def test_a_series_at_an_angle_is_resampled_along_its_own_axes_too(grids_made):
    # Spacingd keeps a series' orientation: from the series' voxels to the new ones is still a
    # scale along each axis, whatever the angle to the patient.
    c, s = math.cos(0.3), math.sin(0.3)
    affine = [[0.75 * c, -0.75 * s, 0, 0], [0.75 * s, 0.75 * c, 0, 0], [0, 0, 1.25, 0], [0, 0, 0, 1]]
    monai_down, monai_back = _there_and_back(_series(affine))
    with separable_resampling():
        ours_down, ours_back = _there_and_back(_series(affine))
    assert sorted(grids_made[2:]) == [24, 50, 60]
    assert (ours_down - monai_down).abs().max() < 1e-6 and (ours_back - monai_back).abs().max() < 1e-5


@pytest.mark.parametrize("rotated, padding", [(True, "border"), (False, "zeros")])
def test_a_rotation_or_another_padding_is_left_to_monai(grids_made, rotated, padding):
    from monai.networks.layers import AffineTransform
    from monai.transforms.spatial import functional

    c, s = (math.cos(0.3), math.sin(0.3)) if rotated else (1.0, 0.0)
    theta = torch.tensor([[0.5 * c, -0.5 * s, 0, 1], [0.5 * s, 0.5 * c, 0, 0], [0, 0, 0.8, 0], [0, 0, 0, 1]])
    args = {"normalized": False, "mode": "bilinear", "padding_mode": padding, "align_corners": False,
            "reverse_indexing": True}
    src = torch.rand(1, 1, 20, 18, 9)
    monai = AffineTransform(**args)(src, theta=theta, spatial_size=[40, 36, 12])
    with separable_resampling():
        ours = functional.AffineTransform(**args)(src, theta=theta, spatial_size=[40, 36, 12])
    assert grids_made == [40 * 36 * 12] * 2 and torch.equal(ours, monai)

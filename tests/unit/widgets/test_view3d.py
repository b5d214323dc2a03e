"""view_3d: NIfTI bytes in memory for ipyniivue, and clear errors for the itkwidgets backend."""

import struct

import numpy as np
import pytest

from imaging_workbench.errors import WorkbenchError
from imaging_workbench.widgets import view_3d
from imaging_workbench.widgets import view3d
from imaging_workbench.widgets.view3d import nifti_bytes


def test_nifti_bytes_hold_header_geometry_and_voxels(known_ct):
    data = nifti_bytes(known_ct.array, known_ct.affine_ras, known_ct.spacing)
    assert struct.unpack_from("<i", data, 0)[0] == 348 and data[344:348] == b"n+1\0"
    assert struct.unpack_from("<8h", data, 40)[:4] == (3, 40, 32, 24)  # x, y, z
    assert struct.unpack_from("<3f", data, 80) == pytest.approx((0.8, 0.8, 2.5))
    srow = [struct.unpack_from("<4f", data, off) for off in (280, 296, 312)]
    assert np.allclose(srow, known_ct.affine_ras[:3], atol=1e-5)
    voxels = np.frombuffer(data, "<i2", offset=352).reshape(known_ct.shape)
    assert np.array_equal(voxels, known_ct.array)


def test_niivue_gets_image_and_label_layers(known_ct):
    mask = known_ct.array > 500
    nv = view_3d(known_ct, segmentation=mask)
    assert [v.name for v in nv.volumes] == ["image.nii", "labels.nii"]
    assert nv.volumes[0].cal_min == pytest.approx(50 - 175)


def test_mask_of_the_wrong_shape_is_refused(known_ct):
    with pytest.raises(ValueError, match="does not match"):
        view_3d(known_ct, segmentation=np.zeros((1, 2, 3), bool))


def test_itkwidgets_missing_says_what_to_use(known_ct, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_itk(name, *args, **kwargs):
        if name == "itkwidgets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_itk)
    with pytest.raises(WorkbenchError, match="not installed") as e:
        view_3d(known_ct, backend="itkwidgets")
    assert "backend='niivue'" in str(e.value)


def test_itkwidgets_offline_says_so(known_ct, monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "itkwidgets", types.SimpleNamespace(__version__="1.0a55", view=None))
    monkeypatch.setattr(view3d, "_reachable", lambda url, timeout: False)  # never touch the network in tests
    with pytest.raises(WorkbenchError, match="not reachable"):
        view_3d(known_ct, backend="itkwidgets")


def test_unknown_backend(known_ct):
    with pytest.raises(ValueError, match="unknown 3-D backend 'vtk'"):
        view_3d(known_ct, backend="vtk")

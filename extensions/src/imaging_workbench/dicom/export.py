"""Handing a Volume to other tools: NIfTI (nibabel) and MONAI (MetaTensor, or a LoadImage reader).

Orientation, stated once: our arrays are (z, y, x) with an LPS affine. NIfTI and MONAI want
(x, y, z) with a RAS affine, so we transpose and negate the first two rows of the affine; the
voxel (i, j, k) of the exported image is Volume.array[k, j, i] and sits at the same point of the
patient. A label volume from load_segmentation exports the same way (`labels=`).
"""

from pathlib import Path

import numpy as np

from .volume import Volume


def to_nifti(volume: Volume, path: str | Path, labels: np.ndarray | None = None) -> Path:
    """Write the volume (or `labels` on its grid) as NIfTI-1 with the RAS affine (qform = sform, code 1)."""
    import nibabel as nib

    data = volume.array if labels is None else labels
    if data.shape != volume.array.shape:
        raise ValueError(f"labels shape {data.shape} differs from the volume's {volume.array.shape}")
    image = nib.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), volume.affine_ras)
    image.set_qform(volume.affine_ras, code=1)
    image.set_sform(volume.affine_ras, code=1)
    image.header.set_xyzt_units("mm")
    path = Path(path)
    nib.save(image, path)
    return path


def to_metatensor(volume: Volume, labels: np.ndarray | None = None, channel_first: bool = True, copy: bool = True):
    """A MONAI MetaTensor (1, x, y, z) by default, meta as MONAI's LoadImage would give (RAS affine).

    `copy=False` gives a strided (x, y, z) view of the volume's own (z, y, x) memory instead of a
    transposed copy (about a second for 512x512x300); it shares that memory, so nothing may write
    into it. MONAI's transforms take strided tensors."""
    import torch
    from monai.data import MetaTensor

    data = (volume.array if labels is None else labels).transpose(2, 1, 0)
    tensor = torch.from_numpy(np.ascontiguousarray(data) if copy else data)
    if channel_first:
        tensor = tensor[None]
    meta = {"original_affine": volume.affine_ras.copy(),
            "spatial_shape": np.array(data.shape), "space": "RAS", "modality": volume.modality,
            "series_uid": volume.series_uid, "original_channel_dim": 0 if channel_first else "no_channel",
            "filename_or_obj": volume.series_uid}
    return MetaTensor(tensor, affine=torch.as_tensor(volume.affine_ras), meta=meta)


def dicom_reader():
    """A MONAI ImageReader using our loader: LoadImage(reader=dicom_reader())(folder)."""
    from monai.data.image_reader import ImageReader

    from .loader import load_series

    class WorkbenchDicomReader(ImageReader):
        def verify_suffix(self, filename) -> bool:
            return Path(str(filename if not isinstance(filename, (list, tuple)) else filename[0])).is_dir()

        def read(self, data, **kwargs):
            return load_series(data if not isinstance(data, (list, tuple)) or len(data) > 1 else data[0])

        def get_data(self, img: Volume):
            data = np.ascontiguousarray(img.array.transpose(2, 1, 0))
            return data, {"affine": img.affine_ras, "original_affine": img.affine_ras.copy(),
                          "spatial_shape": np.array(data.shape), "space": "RAS",
                          "original_channel_dim": float("nan"), "filename_or_obj": img.series_uid}

    return WorkbenchDicomReader()

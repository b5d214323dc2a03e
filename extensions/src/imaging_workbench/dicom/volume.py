"""The in-memory result of loading a series: voxels plus the geometry that places them in the patient."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Volume:
    """A 3-D image in (z, y, x) order with its patient geometry (DICOM LPS, millimetres).

    `array` is C-contiguous (z, y, x): int16 Hounsfield units for CT (RescaleSlope/Intercept
    applied), the stored dtype for MR and others. `spacing` is (z, y, x) in mm. `origin` is the
    patient (x, y, z) position of voxel [0, 0, 0]. `direction` is 3x3; its columns are the patient
    directions of the x (column), y (row) and z (slice) axes. `affine` maps a voxel index
    (i=x, j=y, k=z, 1) to patient LPS mm.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    modality: str
    series_uid: str
    description: str = ""
    patient_id: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.array.ndim != 3:
            raise ValueError(f"Volume.array must be 3-D (z, y, x), got shape {self.array.shape}")
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix: voxel (i=x, j=y, k=z) index -> patient LPS mm."""
        sz, sy, sx = self.spacing
        out = np.eye(4)
        out[:3, :3] = self.direction * np.array([sx, sy, sz])
        out[:3, 3] = self.origin
        return out

    @property
    def affine_ras(self) -> np.ndarray:
        """The same mapping into RAS+ (NIfTI's convention): x and y negated."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine

    def __repr__(self) -> str:
        return (f"Volume({self.modality} {self.array.shape} {self.array.dtype}, spacing={self.spacing}, "
                f"origin={self.origin}, series_uid={self.series_uid!r})")

"""Anatomical phantoms in patient millimetres: torso (chest or abdomen) for CT, head for MR.

A phantom is described once per patient (`make_anatomy`) and then sampled one axial slice at a
time (`ct_slice`, `mr_slice`), so a 512x512x300 series never needs the whole volume in memory.
Coordinates are DICOM patient LPS: x to the patient's left, y to the back, z to the head.
Each slice comes with a label map; LABELS names the codes (tumours are 10, 11, ...).
"""

from dataclasses import dataclass, field

import numpy as np

# label code -> (name, kind); kind is "organ" or "tumour"
LABELS = {1: "Lung", 2: "Liver", 3: "Kidney", 4: "Spleen", 5: "Brain", 6: "Heart"}
TUMOUR_BASE = 10
KEY_ORGANS = {"chest": (1,), "abdomen": (2, 3, 4), "head": (5,)}
TUMOUR_ORGAN = {"lung": 1, "liver": 2, "kidney": 3, "brain": 5}
TUMOUR_ML = (1.0, 40.0)  # tumour volumes are drawn log-uniform between these (before the lobes)


@dataclass
class Tumour:
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    phase: tuple[float, float]
    hu: float


@dataclass
class Anatomy:
    """One patient's body: region, size, contrast phase, tumours, and the random layout of vessels."""

    region: str
    scale: float
    contrast: bool
    tumours: list[Tumour] = field(default_factory=list)
    vessels: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))


def _organs(region: str, s: float, contrast: bool):
    """(label, centre, radii, hu) ellipsoids of the region, drawn in order (later wins)."""
    c = contrast
    if region == "chest":
        return [(6, (15 * s, -35 * s, -45), (55 * s, 45 * s, 60), 200 if c else 45),
                (1, (-80 * s, 0, 20), (58 * s, 78 * s, 130), -850),
                (1, (80 * s, 0, 20), (55 * s, 78 * s, 125), -850)]
    if region == "abdomen":
        return [(2, (-70 * s, -5 * s, 30), (75 * s, 72 * s, 85), 110 if c else 60),
                (4, (85 * s, 30 * s, 40), (33 * s, 40 * s, 50), 120 if c else 50),
                (3, (-70 * s, 60 * s, -40), (27 * s, 35 * s, 55), 180 if c else 35),
                (3, (70 * s, 60 * s, -45), (27 * s, 35 * s, 55), 180 if c else 35)]
    if region == "head":
        return [(5, (0, 0, 0), (66 * s, 82 * s, 75), 600)]
    raise ValueError(f"unknown phantom region {region!r}; use chest, abdomen or head")


def make_anatomy(region: str, tumour_organ: str, rng: np.random.Generator, n_tumours: int = 1) -> Anatomy:
    """Draw a patient: body scale, contrast phase, and `n_tumours` tumours inside `tumour_organ`."""
    if tumour_organ not in TUMOUR_ORGAN:
        raise ValueError(f"unknown tumour organ {tumour_organ!r}; use one of {sorted(TUMOUR_ORGAN)}")
    scale = float(rng.uniform(0.88, 1.12))
    anat = Anatomy(region=region, scale=scale, contrast=bool(rng.random() < 0.6))
    hosts = [o for o in _organs(region, scale, anat.contrast) if o[0] == TUMOUR_ORGAN[tumour_organ]]
    if not hosts:
        raise ValueError(f"a {tumour_organ} tumour cannot sit in a {region} phantom")
    for _ in range(n_tumours):
        _, (cx, cy, cz), (a, b, c), host_hu = hosts[rng.integers(len(hosts))]
        volume_ml = float(np.exp(rng.uniform(*np.log(TUMOUR_ML))))  # log-uniform: as many small as large
        r = (3 * volume_ml * 1000 / (4 * np.pi)) ** (1 / 3)  # mm
        u = rng.uniform(-0.45, 0.45, 3)
        centre = (cx + u[0] * a, cy + u[1] * b, cz + u[2] * min(c, 40))
        shape = rng.uniform(0.8, 1.2, 3)
        radii = tuple(float(r * f) for f in shape / np.cbrt(shape.prod()))  # same volume, not a sphere
        hu = {"lung": 35, "liver": host_hu - 45, "kidney": 40, "brain": 300}[tumour_organ]
        hu += float(rng.normal(0, 12 if tumour_organ != "brain" else 40))  # density varies between tumours
        anat.tumours.append(Tumour(centre, radii, tuple(rng.uniform(0, 2 * np.pi, 2)), hu))
    if region == "chest":  # pulmonary vessels: (x, y, dx/dz, dy/dz, radius)
        n = 60
        side = np.where(rng.random(n) < 0.5, -80.0, 80.0) * scale
        anat.vessels = np.stack([side + rng.uniform(-40, 40, n) * scale, rng.uniform(-55, 55, n) * scale,
                                 rng.uniform(-0.3, 0.3, n), rng.uniform(-0.3, 0.3, n), rng.uniform(1.5, 3.5, n)], 1)
    return anat


def _ellipse(X, Y, z, centre, radii):
    cx, cy, cz = centre
    a, b, c = radii
    return ((X - cx) / a) ** 2 + ((Y - cy) / b) ** 2 + ((z - cz) / c) ** 2


def _tumour_mask(X, Y, z, t: Tumour):
    d = _ellipse(X, Y, z, t.centre, t.radii)
    if d.min() > 1.6:
        return None
    angle = np.arctan2(Y - t.centre[1], X - t.centre[0])
    lobes = 1 + 0.15 * np.sin(3 * angle + t.phase[0]) * np.cos(2 * (z - t.centre[2]) / t.radii[2] + t.phase[1])
    return d <= lobes ** 2


def _smooth(img: np.ndarray) -> np.ndarray:
    """A [1,2,1]/4 blur in x and y: edges with some partial-volume softness."""
    out = img.copy()
    out[1:-1] = (img[:-2] + 2 * img[1:-1] + img[2:]) / 4
    img = out.copy()
    out[:, 1:-1] = (img[:, :-2] + 2 * img[:, 1:-1] + img[:, 2:]) / 4
    return out


def _torso(anat: Anatomy, z: float, X, Y):
    s = anat.scale
    hu = np.full(X.shape, -1000.0, np.float32)
    body = ((X / (165 * s)) ** 2 + (Y / (115 * s)) ** 2) <= 1
    hu[body] = -100  # subcutaneous fat
    fat = 12 if anat.region == "chest" else 22
    hu[((X / (165 * s - fat)) ** 2 + (Y / (115 * s - fat)) ** 2) <= 1] = 45  # muscle and soft tissue
    if anat.region == "chest":
        for k, ang in enumerate(np.linspace(0.15, np.pi - 0.15, 10)):
            if np.sin(z / 14 + k) > 0.2:
                for sign in (-1, 1):
                    rx, ry = sign * np.cos(ang) * (165 * s - 20), -np.sin(ang - 0.3) * (115 * s - 20)
                    hu[(X - rx) ** 2 + (Y - ry) ** 2 <= 36] = 700
    return hu, body


def ct_slice(anat: Anatomy, z: float, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator,
             noise: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Hounsfield units (float32) and labels (uint8) of the axial slice at height `z` mm."""
    s = anat.scale
    hu, _ = _torso(anat, z, X, Y)
    labels = np.zeros(X.shape, np.uint8)
    for label, centre, radii, value in _organs(anat.region, s, anat.contrast):
        inside = _ellipse(X, Y, z, centre, radii) <= 1
        hu[inside], labels[inside] = value, label
    if anat.region == "chest" and len(anat.vessels):
        lung = labels == 1
        for vx, vy, dx, dy, r in anat.vessels:
            vessel = (X - vx - dx * z) ** 2 + (Y - vy - dy * z) ** 2 <= r * r
            hu[vessel & lung] = 40
    aorta = (25 * s, 45 * s) if anat.region == "chest" else (10 * s, 40 * s)
    hu[(X - aorta[0]) ** 2 + (Y - aorta[1]) ** 2 <= 144] = 250 if anat.contrast else 45
    spine_y = 70 * s
    hu[(X ** 2 + (Y - spine_y) ** 2) <= 18 ** 2] = 800
    hu[(X ** 2 + (Y - spine_y) ** 2) <= 15 ** 2] = 280
    hu[(X ** 2 + (Y - spine_y - 26) ** 2) <= 8 ** 2] = 15
    for i, t in enumerate(anat.tumours):
        mask = _tumour_mask(X, Y, z, t)
        if mask is not None:
            hu[mask] = t.hu + 15 * np.sin(X[mask] / 3.0) * np.cos(Y[mask] / 4.0)
            labels[mask] = TUMOUR_BASE + i
    hu = _smooth(hu) + rng.normal(0, noise, X.shape).astype(np.float32)
    return hu, labels


def mr_slice(anat: Anatomy, z: float, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator,
             noise: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """T1-weighted post-contrast signal (float32, >= 0) and labels (uint8) at height `z` mm."""
    s = anat.scale
    sig = np.zeros(X.shape, np.float32)
    labels = np.zeros(X.shape, np.uint8)
    head = _ellipse(X, Y, z, (0, 0, 0), (78 * s, 95 * s, 90))
    sig[head <= 1] = 800  # scalp fat
    sig[head <= 0.9] = 60  # skull
    brain = _ellipse(X, Y, z, (0, 0, 0), (66 * s, 82 * s, 75))
    sig[brain <= 1] = 450  # cortex
    labels[brain <= 1] = 5
    sig[brain <= 0.7] = 600  # white matter
    for side in (-1, 1):
        sig[_ellipse(X, Y, z, (side * 9 * s, -5 * s, 5), (6 * s, 25 * s, 18)) <= 1] = 150  # ventricles
    for i, t in enumerate(anat.tumours):
        mask = _tumour_mask(X, Y, z, t)
        if mask is not None:
            core = _ellipse(X, Y, z, t.centre, tuple(r * 0.65 for r in t.radii)) <= 1
            sig[mask] = 950  # enhancing rim
            sig[mask & core] = t.hu  # necrotic core
            labels[mask] = TUMOUR_BASE + i
    sig = _smooth(sig)
    return np.abs(sig + rng.normal(0, noise, X.shape).astype(np.float32)), labels

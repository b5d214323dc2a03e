"""Synthetic CT and MR series (plus a SEG each) that look and validate like a scanner's output.

`generate_ct_series` / `generate_mr_series` write one series of single-frame images, named by
SOP Instance UID (so listing order is not slice order), in the transfer syntax asked for, and a
highdicom SEG with a segment per key organ and per tumour. `generate_cohort` draws varied
patients (age, sex, dates, scanners, slice thickness, contrast) and writes one study each.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless,
                         JPEGLSLossless, MRImageStorage, RLELossless, generate_uid)

from . import phantom
from .segwrite import UID_PREFIX, write_seg
SOFTWARE = "imaging-workbench synthetic 1.0"
SYNTAXES = {"explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian, "rle": RLELossless,
            "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}
CT_SCANNERS = [("SIEMENS", "SOMATOM Definition AS"), ("GE MEDICAL SYSTEMS", "Revolution CT"),
               ("Philips", "iCT 256"), ("TOSHIBA", "Aquilion ONE")]
MR_SCANNERS = [("SIEMENS", "MAGNETOM Skyra"), ("GE MEDICAL SYSTEMS", "SIGNA Premier"), ("Philips", "Ingenia")]
SURNAMES = ["Moreau", "Okafor", "Lindqvist", "Tanaka", "Novak", "Silva", "Kowalski", "Haddad", "Murphy",
            "Rossi", "Nguyen", "Schmidt", "Jensen", "Costa", "Ivanova", "Patel"]


@dataclass
class Patient:
    """Who and when: the header fields that make a cohort look like a real one."""

    patient_id: str
    name: str
    sex: str
    age: int
    study_date: dt.date
    manufacturer: tuple[str, str]
    study_uid: str = field(default_factory=lambda: generate_uid(UID_PREFIX))

    @property
    def birth_date(self) -> str:
        return (self.study_date - dt.timedelta(days=int(self.age * 365.25 + 100))).strftime("%Y%m%d")


def random_patient(rng: np.random.Generator, patient_id: str, modality: str = "CT") -> Patient:
    scanners = CT_SCANNERS if modality == "CT" else MR_SCANNERS
    return Patient(patient_id=patient_id, name=f"{SURNAMES[rng.integers(len(SURNAMES))]}^{patient_id}",
                   sex=str(rng.choice(["M", "F"])), age=int(rng.integers(34, 86)),
                   study_date=dt.date(2015, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3500))),
                   manufacturer=scanners[rng.integers(len(scanners))],
                   study_uid=generate_uid(UID_PREFIX, entropy_srcs=[patient_id, str(rng.random())]))


@dataclass
class SeriesResult:
    """What a generator wrote: where, the UIDs, geometry, and tumour volumes in millilitres."""

    folder: Path
    files: list[Path]
    series_uid: str
    study_uid: str
    patient_id: str
    modality: str
    transfer_syntax: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    seg_path: Path | None = None
    tumour_volumes_ml: list[float] = field(default_factory=list)
    labels: np.ndarray | None = field(default=None, repr=False)


def _common(p: Patient, modality: str, series_uid: str, frame_uid: str, description: str, thickness: float,
            pixel_spacing: float, shape) -> Dataset:
    ds = Dataset()
    date = p.study_date.strftime("%Y%m%d")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "093000"
    ds.AccessionNumber = f"A{abs(hash(p.study_uid)) % 10**8:08d}"
    ds.Modality = modality
    ds.Manufacturer, ds.ManufacturerModelName = p.manufacturer
    ds.InstitutionName = "Workbench Synthetic Hospital"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"{'CT' if modality == 'CT' else 'MR'} {description}"
    ds.SeriesDescription = description
    ds.PatientName, ds.PatientID = p.name, p.patient_id
    ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = p.birth_date, p.sex, f"{p.age:03d}Y"
    ds.BodyPartExamined = {"chest": "CHEST", "abdomen": "ABDOMEN", "head": "HEAD"}[description.split()[0].lower()]
    ds.SliceThickness = f"{thickness:g}"
    ds.SoftwareVersions = SOFTWARE
    ds.DeviceSerialNumber = "WB0001"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = p.study_uid, series_uid
    ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber = "1", 2 if modality == "CT" else 5, 1
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = shape[1], shape[2]
    ds.PixelSpacing = [f"{pixel_spacing:.6g}", f"{pixel_spacing:.6g}"]
    ds.BitsAllocated, ds.HighBit = 16, 15
    ds.BitsStored = 16
    ds.BurnedInAnnotation = "NO"
    return ds


def _ct_fields(ds: Dataset, rng: np.random.Generator, signed: bool) -> None:
    ds.KVP = str(int(rng.choice([100, 120, 120, 140])))
    ds.ConvolutionKernel = str(rng.choice(["B30f", "STANDARD", "FC13"]))
    ds.PixelRepresentation = 1 if signed else 0
    ds.BitsStored, ds.HighBit = (16, 15) if signed else (12, 11)
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"


def _mr_fields(ds: Dataset) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = ["GR", "IR"], ["SP", "MP"], ""
    ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime = "3D", "2300", "2.98"
    ds.InversionTime, ds.EchoTrainLength, ds.MagneticFieldStrength = "900", "1", "3"
    ds.ImagedNucleus, ds.FlipAngle = "1H", "9"
    ds.PixelRepresentation = 0
    ds.BitsStored, ds.HighBit = 12, 11
    ds.ContrastBolusAgent = "Gadobutrol"


def _slice_spacing(modality: str, nz: int) -> float:
    """A scanner-like slice thickness that covers ~200 mm (CT) or ~150 mm (MR) with nz slices."""
    reach, choices = (200, (1.25, 1.5, 2.0, 2.5, 3.0, 5.0)) if modality == "CT" else (150, (1.0, 1.5, 2.0, 3.0, 4.0, 5.0))
    return max([c for c in choices if c <= reach / nz] or [choices[0]])


def _write_slice(template: Dataset, folder: Path, k: int, z: float, origin_xy, pixels: np.ndarray,
                 syntax: str) -> tuple[Path, Dataset]:
    ds = Dataset()
    ds.update(template)
    ds.SOPInstanceUID = generate_uid(UID_PREFIX)
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [f"{origin_xy[0]:.4f}", f"{origin_xy[1]:.4f}", f"{z:.4f}"]
    ds.SliceLocation = f"{z:.4f}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_PREFIX + "1"
    ds.file_meta = meta
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        ds.PixelData = pixels.tobytes()
        meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax, pixels, generate_instance_uid=False)
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
    return path, ds


def _generate(out_dir, modality: str, shape, spacing, region: str, tumour_organ: str, transfer_syntax,
              seed: int, patient: Patient | None, n_tumours: int, seg: bool, keep_labels: bool,
              progress: bool) -> SeriesResult:
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    if min(shape) < 2:
        raise ValueError(f"series shape must be at least 2 in every axis, got {shape}")
    syntax = SYNTAXES.get(transfer_syntax, transfer_syntax)
    patient = patient or random_patient(rng, f"SYN-{seed:05d}", modality)
    anat = phantom.make_anatomy(region, tumour_organ, rng, n_tumours)
    fov = (rng.uniform(330, 400) if modality == "CT" else rng.uniform(220, 250)) * anat.scale
    dz, pix = (spacing[0], spacing[1]) if spacing else (_slice_spacing(modality, nz), fov / nx)
    series_uid, frame_uid = generate_uid(UID_PREFIX), generate_uid(UID_PREFIX)
    description = f"{region.capitalize()} {'post-contrast' if anat.contrast else 'native'}"
    template = _common(patient, modality, series_uid, frame_uid, description, dz, pix, shape)
    signed = bool(rng.random() < 0.5)
    _ct_fields(template, rng, signed) if modality == "CT" else _mr_fields(template)
    folder = Path(out_dir) / patient.patient_id / patient.study_uid / series_uid
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = (np.arange(nx) - (nx - 1) / 2) * pix, (np.arange(ny) - (ny - 1) / 2) * pix
    X, Y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    z0 = -(nz - 1) / 2 * dz + float(rng.uniform(-10, 10)) + 600  # table height offset, as scanners do
    labels = np.zeros(shape, np.uint8)
    files, headers = [], []
    steps = range(nz)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc=f"{modality} {patient.patient_id}", unit="slice", leave=False)
    for k in steps:
        z = z0 + k * dz
        if modality == "CT":
            img, lab = phantom.ct_slice(anat, z - 600, X, Y, rng, noise=float(rng.uniform(10, 22)))
            px = np.clip(np.rint(img) + 1024, 0, 4095).astype(np.int16 if signed else np.uint16)
        else:
            img, lab = phantom.mr_slice(anat, z - 600, X, Y, rng)
            px = np.clip(np.rint(img), 0, 4095).astype(np.uint16)
        labels[k] = lab
        path, ds = _write_slice(template, folder, k, z, (xs[0], ys[0]), px, syntax)
        del ds.PixelData
        files.append(path)
        headers.append(ds)
    voxel_ml = dz * pix * pix / 1000
    volumes = [float((labels == phantom.TUMOUR_BASE + i).sum() * voxel_ml) for i in range(len(anat.tumours))]
    result = SeriesResult(folder, files, series_uid, patient.study_uid, patient.patient_id, modality, syntax,
                          shape, (dz, pix, pix), tumour_volumes_ml=volumes, labels=labels if keep_labels else None)
    if seg:
        key = phantom.KEY_ORGANS[region]
        result.seg_path = write_seg(headers, labels, key, len(anat.tumours), tumour_organ,
                                    Path(out_dir) / patient.patient_id / patient.study_uid)
    return result


def generate_ct_series(out_dir, shape=(300, 512, 512), spacing=None, region: str = "abdomen",
                       tumour_organ: str = "liver", transfer_syntax="explicit", seed: int = 0,
                       patient: Patient | None = None, n_tumours: int = 1, seg: bool = True,
                       keep_labels: bool = False, progress: bool = False) -> SeriesResult:
    """Write one CT series (int16/uint16 stored, RescaleIntercept -1024) and, if `seg`, its SEG.

    Args:
        out_dir: files go to out_dir/PatientID/StudyUID/SeriesUID/SOPUID.dcm (SEG beside the series).
        shape: (slices, rows, columns). spacing: (slice, row, column) mm, or None for a plausible one.
        region: "chest" or "abdomen"; tumour_organ: "lung", "liver" or "kidney" (must sit in the region).
        transfer_syntax: "explicit", "implicit", "rle", "jpegls", "j2k" or a transfer syntax UID.
    Raises:
        ValueError: unknown region, organ or a degenerate shape.
    """
    return _generate(out_dir, "CT", shape, spacing, region, tumour_organ, transfer_syntax, seed, patient,
                     n_tumours, seg, keep_labels, progress)


def generate_mr_series(out_dir, shape=(24, 64, 64), spacing=None, transfer_syntax="explicit", seed: int = 0,
                       patient: Patient | None = None, n_tumours: int = 1, seg: bool = True,
                       keep_labels: bool = False, progress: bool = False) -> SeriesResult:
    """Write one T1 post-contrast brain MR series with a glioma (uint16, 12 bits) and, if `seg`, its SEG."""
    return _generate(out_dir, "MR", shape, spacing, "head", "brain", transfer_syntax, seed, patient,
                     n_tumours, seg, keep_labels, progress)


# share of series per transfer syntax in a cohort: cycles so every cohort of >= 8 has each one
COHORT_SYNTAXES = ["explicit", "rle", "explicit", "jpegls", "implicit", "j2k", "explicit", "rle"]


def generate_cohort(out_dir, dataset_id: str, n_patients: int, modality: str = "CT", region: str = "abdomen",
                    tumour_organ: str = "liver", shape=(32, 64, 64), seed: int = 0,
                    progress: bool = False) -> list[SeriesResult]:
    """Write `n_patients` patients (one study, one series and one SEG each) under out_dir.

    Patient IDs are `<DATASET>-0001`...; slice counts vary by up to +-12% around shape[0]; a
    share of the series is compressed (see COHORT_SYNTAXES).
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    rng = np.random.default_rng(seed)
    prefix = dataset_id.upper().replace("-", "")[:10]
    results = []
    patients = range(n_patients)
    if progress:
        from tqdm import tqdm
        patients = tqdm(patients, desc=dataset_id, unit="patient")
    for i in patients:
        p = random_patient(rng, f"{prefix}-{i + 1:04d}", modality)
        nz = max(4, int(round(shape[0] * rng.uniform(0.88, 1.12))))
        syntax = COHORT_SYNTAXES[i % len(COHORT_SYNTAXES)]
        n_tumours = 1 + int(rng.random() < 0.25)
        kw = dict(shape=(nz, shape[1], shape[2]), transfer_syntax=syntax, seed=int(rng.integers(1 << 31)),
                  patient=p, n_tumours=n_tumours)
        if modality == "CT":
            results.append(generate_ct_series(out_dir, region=region, tumour_organ=tumour_organ, **kw))
        else:
            results.append(generate_mr_series(out_dir, **kw))
    return results

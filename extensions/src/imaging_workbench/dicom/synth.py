"""Synthetic CT and MR series (plus a SEG each) that look and validate like a scanner's output.

`generate_ct_series` / `generate_mr_series` write one series of single-frame images, named by
SOP Instance UID (so listing order is not slice order), in the transfer syntax asked for, and a
highdicom SEG with a segment per key organ and per tumour. `generate_cohort` draws varied
patients (age, sex, dates, scanners, slice thickness, contrast, tumour size) and writes one study
each, on a process pool. Everything follows from the seed: the same seed writes identical files
(UIDs, SEG included), whatever the number of workers.
"""

import bisect
import datetime as dt
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
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
# a cohort's ages: equal shares of these [low, high] bands (10-year bands hold n/5 patients each)
AGE_BANDS = [(40, 49), (50, 59), (60, 69), (70, 79), (80, 87)]
FRESH_UID_ROOTS = (UID_PREFIX, "1.2.826.0.1.3680043.10.511.")  # ours and highdicom's: the UIDs a SEG draws
SEG_TIME = "101500"  # the SEG's content time: the study's date, a fixed time, so files are reproducible


def _uid(*parts) -> str:
    """A UID under the workbench root that depends only on `parts` (reproducible files)."""
    return generate_uid(UID_PREFIX, entropy_srcs=[str(p) for p in parts])


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


def random_patient(rng: np.random.Generator, patient_id: str, modality: str = "CT", sex: str | None = None,
                   age: int | None = None) -> Patient:
    """A patient drawn from `rng`; `sex` and `age` fix those two (a cohort balances them)."""
    scanners = CT_SCANNERS if modality == "CT" else MR_SCANNERS
    drawn_sex, drawn_age = str(rng.choice(["M", "F"])), int(rng.integers(40, 88))
    return Patient(patient_id=patient_id, name=f"{SURNAMES[rng.integers(len(SURNAMES))]}^{patient_id}",
                   sex=sex or drawn_sex, age=drawn_age if age is None else int(age),
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
    ds.AccessionNumber = f"A{zlib.crc32(p.study_uid.encode()) % 10**8:08d}"
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


class _SliceWriter:
    """Writes a series' slices byte for byte as pydicom's `save_as` would, but encodes the elements
    that all slices share only once.

    The first slice goes through `save_as`; its shared elements are encoded in runs between the
    per-slice ones (SOP Instance UID, Instance Number, Image Position, Slice Location, Pixel Data),
    so each later slice encodes only those and its file meta (pydicom's encoding is most of the
    time a small series takes).
    """

    PER_SLICE = (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)

    def __init__(self, syntax: str):
        self.implicit = syntax == ImplicitVRLittleEndian
        self.runs: list[bytes] | None = None

    def _encode(self, elements) -> bytes:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, self.implicit
        sub = Dataset()
        for elem in elements:
            if elem.VR == "OB or OW":  # native 16-bit pixels: what pydicom's writer resolves it to
                elem = DataElement(elem.tag, "OW", elem.value)
            sub.add(elem)
        write_dataset(fp, sub)
        return fp.getvalue()

    def write(self, ds: Dataset, path: Path) -> None:
        if self.runs is None:
            ds.save_as(path, implicit_vr=self.implicit, little_endian=True, enforce_file_format=True)
            runs = [[] for _ in range(len(self.PER_SLICE) + 1)]
            for elem in ds:
                if elem.tag not in self.PER_SLICE:
                    runs[bisect.bisect(self.PER_SLICE, elem.tag)].append(elem)
            self.runs = [self._encode(run) for run in runs]
            return
        fp = DicomBytesIO()
        fp.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
        parts = [self.runs[0]]
        for tag, run in zip(self.PER_SLICE, self.runs[1:]):
            parts += [self._encode([ds[tag]]), run]
        path.write_bytes(fp.getvalue() + b"".join(parts))


def _write_slice(template: Dataset, folder: Path, k: int, z: float, origin_xy, pixels: np.ndarray,
                 syntax: str, writer: _SliceWriter | None = None) -> tuple[Path, Dataset]:
    ds = Dataset()
    ds.update(template)
    ds.SOPInstanceUID = _uid("image", template.SeriesInstanceUID, k)
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
    if writer is None:
        ds.save_as(path, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
    else:
        writer.write(ds, path)
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
    series_uid, frame_uid = (_uid(kind, patient.study_uid, seed, modality) for kind in ("series", "frame"))
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
    writer = _SliceWriter(syntax)
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
        path, ds = _write_slice(template, folder, k, z, (xs[0], ys[0]), px, syntax, writer)
        del ds.PixelData
        files.append(path)
        headers.append(ds)
    voxel_ml = dz * pix * pix / 1000
    volumes = [float((labels == phantom.TUMOUR_BASE + i).sum() * voxel_ml) for i in range(len(anat.tumours))]
    result = SeriesResult(folder, files, series_uid, patient.study_uid, patient.patient_id, modality, syntax,
                          shape, (dz, pix, pix), tumour_volumes_ml=volumes, labels=labels if keep_labels else None)
    if seg:
        key = phantom.KEY_ORGANS[region]
        path = write_seg(headers, labels, key, len(anat.tumours), tumour_organ,
                         Path(out_dir) / patient.patient_id / patient.study_uid)
        result.seg_path = _pin_seg(path, series_uid, template.StudyDate)
    return result


def _pin_seg(path: Path, series_uid: str, date: str) -> Path:
    """Rewrite a fresh SEG so that it depends only on its series: the UIDs it drew (series, instance,
    dimension organisation, tracking) derived from the series UID, its dates the study's. Only these
    elements are parsed; the frames' functional groups are copied as read. Returns the new path."""
    mapping: dict[str, str] = {}

    def pin(owner, keyword):
        if keyword in owner and str(owner[keyword].value).startswith(FRESH_UID_ROOTS):
            old = str(owner[keyword].value)
            setattr(owner, keyword, mapping.setdefault(old, _uid("seg", series_uid, len(mapping))))

    ds = pydicom.dcmread(path)
    for keyword in ("SeriesInstanceUID", "SOPInstanceUID"):
        pin(ds, keyword)
    pin(ds.file_meta, "MediaStorageSOPInstanceUID")
    for sequence, keyword in (("DimensionOrganizationSequence", "DimensionOrganizationUID"),
                              ("DimensionIndexSequence", "DimensionOrganizationUID"),
                              ("SegmentSequence", "TrackingUID")):
        for item in ds.get(sequence) or []:
            pin(item, keyword)
    for prefix in ("Series", "Content", "InstanceCreation", "Acquisition"):
        if f"{prefix}Date" in ds:
            setattr(ds, f"{prefix}Date", date)
        if f"{prefix}Time" in ds:
            setattr(ds, f"{prefix}Time", SEG_TIME)
    for item in ds.get("ContributingEquipmentSequence") or []:
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + SEG_TIME
    out = path.parent.parent / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    shutil.rmtree(path.parent)
    return out


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


def _balanced(rng: np.random.Generator, n: int, options: list) -> list:
    """`n` picks spread evenly over `options` (the remainder drawn), shuffled."""
    picks = [options[i % len(options)] for i in range(n - n % len(options))]
    picks += [options[j] for j in rng.choice(len(options), n % len(options), replace=False)]
    return [picks[j] for j in rng.permutation(n)]


def cohort_jobs(out_dir, dataset_id: str, n_patients: int, modality: str = "CT", region: str = "abdomen",
                tumour_organ: str = "liver", shape=(32, 64, 64), seed: int = 0) -> list[dict]:
    """The patients of a cohort, drawn up front: one keyword dict per series for `_cohort_series`.

    Sex is balanced and ages fill AGE_BANDS evenly (so counts by sex and 10-year band are about
    n/2 and n/5); slice counts vary by up to +-12% around shape[0]; one or two tumours each.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    rng = np.random.default_rng(seed)
    prefix = dataset_id.upper().replace("-", "")[:10]
    sexes = _balanced(rng, n_patients, ["F", "M"])
    bands = _balanced(rng, n_patients, AGE_BANDS)
    jobs = []
    for i in range(n_patients):
        lo, hi = bands[i]
        p = random_patient(rng, f"{prefix}-{i + 1:04d}", modality, sex=sexes[i], age=int(rng.integers(lo, hi + 1)))
        nz = max(4, int(round(shape[0] * rng.uniform(0.88, 1.12))))
        jobs.append(dict(out_dir=str(out_dir), modality=modality, region=region, tumour_organ=tumour_organ,
                         shape=(nz, shape[1], shape[2]), transfer_syntax=COHORT_SYNTAXES[i % len(COHORT_SYNTAXES)],
                         seed=int(rng.integers(1 << 31)), patient=p, n_tumours=1 + int(rng.random() < 0.25)))
    return jobs


def _cohort_series(job: dict) -> SeriesResult:
    job = dict(job)
    modality, region, organ = job.pop("modality"), job.pop("region"), job.pop("tumour_organ")
    if modality == "CT":
        return generate_ct_series(region=region, tumour_organ=organ, **job)
    return generate_mr_series(**job)


def default_workers() -> int:
    """Processes for cohort generation: the CPUs this process may use ($WORKBENCH_SYNTH_WORKERS overrides)."""
    if os.environ.get("WORKBENCH_SYNTH_WORKERS"):
        return max(1, int(os.environ["WORKBENCH_SYNTH_WORKERS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_jobs(jobs: list[dict], workers: int | None = None, progress: bool = False,
             desc: str = "patients") -> list[SeriesResult]:
    """Write the series of `jobs` (from `cohort_jobs`) on `workers` processes; results in job order.

    Each job carries its own seed, so the files do not depend on the number of workers or the order
    in which they finish.
    """
    workers = min(workers or default_workers(), len(jobs))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc=desc, unit="patient")
    try:
        if workers <= 1:
            results = []
            for job in jobs:
                results.append(_cohort_series(job))
                bar and bar.update()
            return results
        results = [None] * len(jobs)
        # spawn: no fork of a parent that may hold threads (tqdm's monitor, a hub, a kernel)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_cohort_series, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar and bar.update()
        return results
    finally:
        bar and bar.close()


def generate_cohort(out_dir, dataset_id: str, n_patients: int, modality: str = "CT", region: str = "abdomen",
                    tumour_organ: str = "liver", shape=(32, 64, 64), seed: int = 0,
                    progress: bool = False, workers: int | None = None) -> list[SeriesResult]:
    """Write `n_patients` patients (one study, one series and one SEG each) under out_dir.

    Patient IDs are `<DATASET>-0001`...; see `cohort_jobs` for the variety drawn; a share of the
    series is compressed (see COHORT_SYNTAXES). `workers`: processes (default: every usable CPU).
    """
    jobs = cohort_jobs(out_dir, dataset_id, n_patients, modality, region, tumour_organ, shape, seed)
    return run_jobs(jobs, workers, progress, desc=dataset_id)

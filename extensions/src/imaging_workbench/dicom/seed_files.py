"""The seed cohort's files: one template per kind (image or SEG, modality, sex), and each file's values.

Every varying field is a slot of fixed length: UIDs are all UID_LENGTH characters (`uid`),
text is padded with trailing spaces (insignificant in LO, SH, PN, CS), decimals are written
zero-padded with a sign (+0012.5000, valid DS), integers right-aligned. Fields with a few values
(patient sex, the slice's number, a breast's laterality) pick the template instead. Files go to <dataset>/<PatientID>/<StudyUID>/<SeriesUID>/
<SOPUID>.dcm, the SEG beside its series, as the demo cohorts do.
"""

import functools
import itertools
import os
import warnings

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, PositronEmissionTomographyImageStorage

from .seed_cohort import ROWS, SEG_MODALITIES, SeedDataset, SeedPatient
from .seed_template import FileTemplate, number_placeholder, text_placeholder, uid_placeholder
from .segwrite import UID_PREFIX
from .synth import SOFTWARE

TEXT = {"pid": 12, "name": 32, "birth": 8, "age": 4, "date": 8, "acc": 10, "maker": 24, "model": 24,
        "institution": 32, "study_desc": 48, "series_desc": 48, "body": 10}
DATES = ("birth", "date")
UIDS = ("study", "series", "frame", "sop", "sop0", "sop1", "seg_series", "seg_sop", "seg_track")
NUMBERS = ("x", "y", "z", "z0", "z1", "ps", "thick")  # DS, 10 characters
INTS = ("series_no",)  # IS, 4 characters
NUMBER_WIDTH, INT_WIDTH = 10, 4
MAX_SLICES = 3  # per series: the image templates are per slice (InstanceNumber, PET ImageIndex)
SEG_FRAMES = 2  # a segmented series has two slices, so that series + SEG are three files like the others
CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage, "PT": PositronEmissionTomographyImageStorage}
N_PIXEL_VARIANTS = 16
# highdicom draws these UIDs afresh; one fixed value each keeps the files reproducible
DIMENSION_ORGANIZATION_UID = UID_PREFIX + "7.0.1"


def uid(seed: int, kind: int, dataset: int, patient: int, study: int = 0, series: int = 0, instance: int = 0) -> str:
    """A UID of UID_LENGTH (50) characters naming one object of the seed cohort (kind 1-9)."""
    return f"{UID_PREFIX}7.1{seed % 10**6:06d}.{kind}{dataset:02d}{patient:05d}{study}{series:02d}{instance}"


def placeholders() -> dict[str, str]:
    out, names = {}, [*TEXT, *UIDS, *NUMBERS, *INTS]
    for i, name in enumerate(names):
        if name in DATES:
            out[name] = f"18{i:02d}0101"  # highdicom parses the dates it copies: a real date, in no real header
        elif name == "age":
            out[name] = f"{i:03d}D"  # an age in days: valid, and no seed patient is that young
        elif name in TEXT:
            out[name] = text_placeholder(i, TEXT[name])
        elif name in UIDS:
            out[name] = uid_placeholder(i)
        elif name in NUMBERS:
            out[name] = number_placeholder(i, NUMBER_WIDTH)
        else:
            out[name] = f"-8{i:02d}"
    return out


def _image(modality: str, sex: str, ph: dict[str, str], instance: int = 1, laterality: str = "") -> Dataset:
    """Slice `instance` of a series, with placeholders in every slot (pixel data: zeros of the right length).

    `laterality` (L or R) only for a paired body part (BREAST): dciodvfy refuses it anywhere else."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID, ds.SOPInstanceUID = CLASSES[modality], ph["sop"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ph["date"]
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = "091500", "092000", "092100", "092200"
    ds.AccessionNumber, ds.Modality = ph["acc"], modality
    ds.Manufacturer, ds.InstitutionName, ds.ReferringPhysicianName = ph["maker"], ph["institution"], ""
    ds.StudyDescription, ds.SeriesDescription = ph["study_desc"], ph["series_desc"]
    ds.ManufacturerModelName = ph["model"]
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = ph["name"], ph["pid"], ph["birth"]
    ds.PatientSex, ds.PatientAge = sex, ph["age"]
    ds.BodyPartExamined, ds.SliceThickness = ph["body"], ph["thick"]
    ds.SoftwareVersions, ds.PatientPosition = SOFTWARE, "HFS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ph["study"], ph["series"]
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", ph["series_no"], instance
    if laterality:
        ds.Laterality = laterality
    ds.ImagePositionPatient = [ph["x"], ph["y"], ph["z"]]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = ph["frame"], ""
    ds.SliceLocation = ph["z"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = ROWS[modality]
    ds.PixelSpacing = [ph["ps"], ph["ps"]]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = (16, 12, 11) if modality == "MR" else (16, 16, 15)
    ds.PixelRepresentation = 1 if modality == "CT" else 0
    if modality == "CT":
        ds.AcquisitionNumber, ds.KVP, ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "1", "120", "0", "1", "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
    elif modality == "MR":
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "NONE", "2D"
        ds.ScanOptions, ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "", "500", "15", "1"
        ds.MagneticFieldStrength = "3"
    else:
        ds.Units, ds.DecayCorrection, ds.CorrectedImage = "BQML", "START", ["ATTN", "DECY"]
        ds.SeriesType, ds.RescaleIntercept, ds.RescaleSlope = ["WHOLE BODY", "IMAGE"], "0", "2.5"
        ds.CountsSource, ds.CollimatorType, ds.NumberOfSlices, ds.ImageIndex = "EMISSION", "NONE", 3, instance
        ds.FrameReferenceTime, ds.ActualFrameDuration, ds.DecayFactor = "0", "180000", "1"
        drug = Dataset()
        drug.Radiopharmaceutical, drug.RadionuclideTotalDose = "Fluorodeoxyglucose", "3.7E8"
        drug.RadionuclideHalfLife = "6586.2"
        drug.RadionuclideCodeSequence = []
        ds.RadiopharmaceuticalInformationSequence = [drug]
        ds.PatientOrientationCodeSequence, ds.PatientGantryRelationshipCodeSequence = [], []
        del ds.PatientPosition  # PET states it in the two sequences above instead
    ds.PixelData = bytes(2 * ROWS[modality] ** 2)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ph["sop"]
    meta.TransferSyntaxUID, meta.ImplementationClassUID = ExplicitVRLittleEndian, UID_PREFIX + "1"
    ds.file_meta = meta
    return ds


def _seg(modality: str, sex: str, ph: dict[str, str]) -> Dataset:
    """A highdicom SEG (one lesion segment) of a two-slice series, its varying fields set to placeholders."""
    import highdicom as hd  # here only: the writing processes never need it

    n = ROWS[modality]
    sources = []
    for k in range(SEG_FRAMES):
        ds = _image(modality, sex, ph)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ph[f"sop{k}"]
        ds.ImagePositionPatient, ds.PixelSpacing, ds.SliceThickness = [0, 0, 2.0 * k], [1, 1], 2
        sources.append(ds)
    yy, xx = np.mgrid[:n, :n]
    disk = (yy - n / 2) ** 2 + (xx - n / 2 - 2) ** 2 < (n / 5) ** 2
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking_id="Lesion 1", tracking_uid=ph["seg_track"])
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack([disk] * SEG_FRAMES).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[description],
        series_instance_uid=ph["seg_series"], series_number=300, sop_instance_uid=ph["seg_sop"], instance_number=1,
        manufacturer="Imaging Workbench", manufacturer_model_name="seed", software_versions=SOFTWARE,
        device_serial_number="WB0001", content_label="LESION", content_description="Lesion",
        content_creator_name="Workbench^Seed", series_description="SEG Lesion")
    # highdicom stamps the present time; the series' date and a fixed time keep the files reproducible
    for prefix in ("Series", "Content", "InstanceCreation"):
        setattr(seg, f"{prefix}Date", ph["date"])
        setattr(seg, f"{prefix}Time", "093000")
    for item in seg.get("ContributingEquipmentSequence") or []:
        item.ContributionDateTime = ph["date"] + "093000"
    for item in [*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence]:
        item.DimensionOrganizationUID = DIMENSION_ORGANIZATION_UID
    sop_slice = {ph[f"sop{k}"]: k for k in range(SEG_FRAMES)}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        k = sop_slice[frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        frame.PlanePositionSequence[0].ImagePositionPatient = [ph["x"], ph["y"], ph[f"z{k}"]]
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.PixelSpacing, measures.SliceThickness = [ph["ps"], ph["ps"]], ph["thick"]
    if "SpacingBetweenSlices" in measures:
        measures.SpacingBetweenSlices = ph["thick"]
    return seg


IMAGE_SLOTS = {*TEXT, "study", "series", "frame", "sop", "x", "y", "z", "ps", "thick", *INTS}
SEG_SLOTS = {"pid", "name", "birth", "age", "date", "acc", "study", "frame", "series", "sop0", "sop1", "seg_series",
             "seg_sop", "seg_track", "x", "y", "z0", "z1", "ps", "thick"}


def _pixels(seed: int, modality: str) -> list[bytes]:
    """A few thumbnails per modality: a body ellipse, a brighter lesion, noise (reproducible)."""
    rng = np.random.default_rng([seed, ord(modality[0])])
    n = ROWS[modality]
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    body = (xx / (0.45 * n)) ** 2 + (yy / (0.35 * n)) ** 2 < 1
    lesion = (yy) ** 2 + (xx - 2) ** 2 < (n / 5) ** 2
    base, inside, spot, noise, dtype = {"CT": (-1000, 40, 120, 15, "<i2"), "MR": (0, 600, 1400, 40, "<u2"),
                                        "PT": (0, 300, 2500, 60, "<u2")}[modality]
    out = []
    for _ in range(N_PIXEL_VARIANTS):
        img = np.where(body, inside, base) + np.where(lesion, spot - inside, 0) + rng.normal(0, noise, (n, n)) * body
        out.append(np.clip(np.rint(img), -1024 if dtype == "<i2" else 0, 4095).astype(dtype).tobytes())
    return out


@functools.cache  # the same for every run of a process (a test writes several cohorts)
def build_templates(seed: int) -> tuple[dict, dict]:
    """({(kind, modality, sex): FileTemplate}, {modality: [pixel bytes]}); kind is "image" or "seg"."""
    with warnings.catch_warnings():  # placeholders are no valid values of their VR (on purpose)
        warnings.simplefilter("ignore")
        return _templates(placeholders()), {m: _pixels(seed, m) for m in ROWS}


def _templates(ph: dict[str, str]) -> dict:
    templates = {}
    for modality in ROWS:
        for sex in "MF":
            for k, laterality in itertools.product(range(MAX_SLICES), ("", "L", "R")):
                image = _image(modality, sex, ph, k + 1, laterality)
                templates["image", modality, sex, k, laterality] = FileTemplate.build(
                    image, ph, IMAGE_SLOTS, pixel_bytes=2 * ROWS[modality] ** 2)
            if modality in SEG_MODALITIES:
                templates["seg", modality, sex] = FileTemplate.build(_seg(modality, sex, ph), ph, SEG_SLOTS)
    return templates


def _text(value: str, n: int) -> bytes:
    return value[:n].ljust(n).encode("ascii")


def _decimal(value: float, decimals: int = 3) -> bytes:
    return f"{value:+0{NUMBER_WIDTH}.{decimals}f}".encode("ascii")


def patient_files(templates: dict, pixels: dict, seed: int, out: str, d: SeedDataset, p: SeedPatient):
    """Yield (path, bytes) of every file of patient `p`, and (path, None) for each folder first."""
    root = os.path.join(out, d.id, p.patient_id)
    yield root, None
    values = {"pid": _text(p.patient_id, 12), "name": _text(p.name, 32), "birth": _text(p.birth_date, 8),
              "age": f"{p.age:03d}Y".encode(), "institution": _text(d.institution, 32)}
    studies = set()
    for s in p.series:
        study = uid(seed, 1, d.index, p.index, s.study)
        if study not in studies:
            studies.add(study)
            yield os.path.join(root, study), None
        series = uid(seed, 2, d.index, p.index, s.study, s.number)
        folder = os.path.join(root, study, series)
        yield folder, None
        values.update({
            "date": s.date.encode(), "acc": _text(f"A{d.index:02d}{p.index:05d}{s.study}", 10),
            "maker": _text(s.manufacturer[0], 24), "model": _text(s.manufacturer[1], 24),
            "study_desc": _text(s.study_description, 48), "series_desc": _text(s.description, 48),
            "body": _text(s.body_part, 10), "study": study.encode(), "series": series.encode(),
            "frame": uid(seed, 3, d.index, p.index, s.study, s.number).encode(),
            "x": _decimal(s.origin[0]), "y": _decimal(s.origin[1]), "ps": _decimal(s.pixel_spacing, 4),
            "thick": _decimal(s.thickness), "series_no": f"{s.number:{INT_WIDTH}d}".encode()})
        variants = pixels[s.modality]
        for k in range(s.n_slices):
            image = templates["image", s.modality, p.sex, k, s.laterality]
            sop = uid(seed, 4, d.index, p.index, s.study, s.number, k + 1)
            values.update({"sop": sop.encode(), "z": _decimal(s.origin[2] + k * s.thickness),
                           f"sop{k}": sop.encode(), f"z{k}": _decimal(s.origin[2] + k * s.thickness)})
            pixels_k = variants[(p.index + s.number + k) % N_PIXEL_VARIANTS]
            yield os.path.join(folder, sop + ".dcm"), image.render(values, pixels_k)
        if s.seg:
            seg_series = uid(seed, 5, d.index, p.index, s.study, s.number)
            seg_sop = uid(seed, 6, d.index, p.index, s.study, s.number)
            values.update({"seg_series": seg_series.encode(), "seg_sop": seg_sop.encode(),
                           "seg_track": uid(seed, 7, d.index, p.index, s.study, s.number).encode()})
            yield os.path.join(root, study, seg_series), None
            seg = templates["seg", s.modality, p.sex].render(values)
            yield os.path.join(root, study, seg_series, seg_sop + ".dcm"), seg

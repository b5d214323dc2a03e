"""What the seed cohort holds: 30 datasets at 30 sites, their patients, studies and series.

Everything here is drawn from the seed, per patient (`random.Random` seeded by seed, dataset and
patient), so a patient's series do not depend on how the work is split over processes. Counts are
exact: series per patient come in pairs around the mean (10 - d, 10 + d), a dataset's patients
alternate sex and fill the five age bands evenly, and every series is three files (three
slices, or two slices and a SEG), so the full seed is 20,000 patients, 200,000 series and
600,000 files. `seed.py` turns these plans into files.
"""

import datetime as dt
import random
from dataclasses import dataclass

from .synth import AGE_BANDS, CT_SCANNERS, MR_SCANNERS, SURNAMES

PT_SCANNERS = [("SIEMENS", "Biograph Vision"), ("GE MEDICAL SYSTEMS", "Discovery MI"), ("Philips", "Vereos")]
SCANNERS = {"CT": CT_SCANNERS, "MR": MR_SCANNERS, "PT": PT_SCANNERS}
GIVEN = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kofi", "Lea", "Mika",
         "Nia", "Omar", "Pia", "Ravi", "Sara", "Tomas", "Uma", "Viktor", "Wen", "Yara", "Zoltan"]
CITIES = ["Aarhus", "Bergen", "Bologna", "Bordeaux", "Coimbra", "Cork", "Dresden", "Ghent", "Graz", "Groningen",
          "Heidelberg", "Krakow", "Leiden", "Leuven", "Lille", "Lund", "Lyon", "Malaga", "Maastricht", "Nantes",
          "Oulu", "Porto", "Riga", "Salzburg", "Tartu", "Turin", "Uppsala", "Utrecht", "Valencia", "Zagreb"]
# cancer type, dataset title, main body part, modality weights
CANCERS = [("lung", "Lung cancer staging", "CHEST", {"CT": 7, "PT": 2, "MR": 1}),
           ("breast", "Breast cancer imaging", "BREAST", {"MR": 6, "CT": 2, "PT": 2}),
           ("liver", "Liver lesions", "ABDOMEN", {"CT": 6, "MR": 4}),
           ("kidney", "Renal tumours", "ABDOMEN", {"CT": 8, "MR": 2}),
           ("prostate", "Prostate cancer", "PELVIS", {"MR": 8, "CT": 1, "PT": 1}),
           ("glioma", "Brain tumours", "HEAD", {"MR": 9, "CT": 1}),
           ("colorectal", "Colorectal cancer", "ABDOMEN", {"CT": 7, "MR": 2, "PT": 1}),
           ("head-neck", "Head and neck cancer", "NECK", {"CT": 5, "MR": 3, "PT": 2}),
           ("lymphoma", "Lymphoma PET/CT", "WHOLEBODY", {"PT": 6, "CT": 4}),
           ("pancreas", "Pancreatic cancer", "ABDOMEN", {"CT": 7, "MR": 3})]
PAIRED = ("BREAST",)  # body parts with a laterality
OTHER_PARTS = ["CHEST", "ABDOMEN", "PELVIS", "HEAD", "NECK"]
PURPOSES = ["STAGING", "FOLLOW-UP", "RESTAGING", "BASELINE", "SCREENING", "TREATMENT RESPONSE", "SURVEILLANCE"]
DESCRIPTIONS = {
    "CT": ["{part} W/O CONTRAST {t}mm", "{part} WITH CONTRAST {phase}", "{part} {t} {kernel}",
           "CT {part} {phase} {t}mm {kernel}", "LOW DOSE {part}", "{part} ANGIO {t}mm", "Recon 2: {part} {kernel}"],
    "MR": ["AX T1 {part}", "AX T2 FSE {part}", "T1 MPRAGE POST GD", "T2 FLAIR AX", "DWI b{b}", "ADC MAP",
           "COR T2 STIR", "T1 VIBE DIXON {phase}", "SAG T1 3D {part}", "DCE PERFUSION {part}"],
    "PT": ["PET AC {part}", "PET NAC {part}", "PET WB FDG 3D", "PSMA PET {part}", "PET {part} MAC {t}mm"],
}
PHASES = ["ARTERIAL", "PORTAL VENOUS", "DELAYED", "NON-CONTRAST", "EARLY"]
KERNELS = ["B30f", "B70f", "STANDARD", "LUNG", "BONE", "FC13", "Br40"]
THICKNESS = {"CT": (1.0, 1.25, 2.5, 3.0, 5.0), "MR": (1.0, 3.0, 4.0, 5.0, 6.0), "PT": (2.0, 3.0, 4.0, 5.0)}
FOV = {"CT": (340, 460), "MR": (200, 260), "PT": (500, 700)}
ROWS = {"CT": 32, "MR": 32, "PT": 16}  # slices are thumbnails: headers are what scale tests exercise
SEG_MODALITIES = ("CT", "MR")
LIMITS = {"datasets": 99, "patients per dataset": 99999, "series per patient": 40}  # what the UIDs have room for


@dataclass(frozen=True)
class SeedDataset:
    """One seed dataset; the fields `_register_demo` and the catalog read, plus what drawing needs."""

    id: str
    title: str
    site: str
    cancer_type: str
    modality: str
    body_part: str
    index: int
    n_patients: int
    seg_share: float
    weights: tuple[tuple[str, int], ...]
    institution: str


@dataclass
class SeedSeries:
    """One series to write: who, which study, modality, text, geometry; `seg`: it gets a SEG."""

    patient: int
    study: int
    number: int
    modality: str
    body_part: str
    description: str
    study_description: str
    date: str
    manufacturer: tuple[str, str]
    thickness: float
    pixel_spacing: float
    origin: tuple[float, float, float]
    n_slices: int
    seg: bool
    laterality: str = ""  # L or R for a paired body part (BREAST), else none


@dataclass
class SeedPatient:
    index: int
    patient_id: str
    name: str
    sex: str
    age: int
    birth_date: str
    series: list[SeedSeries]


def seed_datasets(n_datasets: int = 30, n_patients: int = 20000) -> list[SeedDataset]:
    """The datasets seed-01.. at site-01..: cancer types in turn, patients split as evenly as possible.

    Raises:
        ValueError: no datasets or patients, or more than the UIDs have room for.
    """
    if not 1 <= n_datasets <= LIMITS["datasets"] or n_patients < n_datasets:
        raise ValueError(f"seed cohort: need 1-{LIMITS['datasets']} datasets and at least one patient each, "
                         f"got {n_datasets} datasets, {n_patients} patients")
    if -(-n_patients // n_datasets) > LIMITS["patients per dataset"]:
        raise ValueError(f"seed cohort: at most {LIMITS['patients per dataset']} patients per dataset")
    out = []
    for i in range(n_datasets):
        cancer, title, part, weights = CANCERS[i % len(CANCERS)]
        modalities = sorted(weights, key=lambda m: -weights[m])
        city = CITIES[i % len(CITIES)]
        out.append(SeedDataset(
            id=f"seed-{i + 1:02d}", title=f"{title} ({city})", site=f"site-{i + 1:02d}", cancer_type=cancer,
            modality="/".join(modalities), body_part=part, index=i + 1,
            n_patients=n_patients // n_datasets + (i < n_patients % n_datasets),
            seg_share=(0.1, 0.25, 0.4)[i % 3], weights=tuple(weights.items()),
            institution=f"{city} {('University Hospital', 'Cancer Centre', 'Medical Centre')[i % 3]}"))
    return out


def _n_series(seed: int, d: SeedDataset, i: int, mean: int) -> int:
    """Pairs of patients get mean - k and mean + k series, so a dataset holds exactly mean x patients."""
    if i == d.n_patients - 1 and d.n_patients % 2:
        return mean
    k = random.Random(f"{seed}/{d.id}/pair/{i // 2}").randint(0, min(3, mean - 1))
    return mean - k if i % 2 == 0 else mean + k


def _description(r: random.Random, modality: str, part: str, thickness: float) -> str:
    text = r.choice(DESCRIPTIONS[modality])
    return text.format(part=part, t=f"{thickness:g}", phase=r.choice(PHASES), kernel=r.choice(KERNELS),
                       b=r.choice((500, 800, 1000)))


def _series(r: random.Random, d: SeedDataset, study: int, number: int, date: str, purpose: str) -> SeedSeries:
    modality = r.choices([m for m, _ in d.weights], [w for _, w in d.weights])[0]
    part = d.body_part if r.random() < 0.8 else r.choice(OTHER_PARTS)
    thickness = r.choice(THICKNESS[modality])
    pixel = r.uniform(*FOV[modality]) / ROWS[modality]
    half = (ROWS[modality] - 1) / 2 * pixel
    seg = modality in SEG_MODALITIES and r.random() < d.seg_share
    scanners = SCANNERS[modality]
    return SeedSeries(
        patient=0, study=study, number=number, modality=modality, body_part=part,
        description=_description(r, modality, part, thickness), study_description=f"{modality} {part} {purpose}",
        date=date, manufacturer=scanners[(d.index + (r.random() < 0.3)) % len(scanners)], thickness=thickness,
        pixel_spacing=pixel, origin=(-half, -half, round(r.uniform(-400, 200), 1)), n_slices=2 if seg else 3, seg=seg,
        laterality=r.choice("LR") if part in PAIRED else "")


def seed_patient(seed: int, d: SeedDataset, i: int, series_per_patient: int = 10) -> SeedPatient:
    """Patient `i` (from 0) of dataset `d`: identity, 1-3 studies over the years, their series."""
    r = random.Random(f"{seed}/{d.id}/{i}")
    lo, hi = AGE_BANDS[(i // 2) % len(AGE_BANDS)]
    sex, age = "MF"[i % 2], r.randint(lo, hi)
    n = _n_series(seed, d, i, series_per_patient)
    n_studies = min(n, r.randint(1, 3))
    cuts = sorted(r.sample(range(1, n), n_studies - 1)) if n_studies > 1 else []
    first = dt.date(2012, 1, 1) + dt.timedelta(days=r.randint(0, 4000))
    series, date, purposes = [], first, r.sample(PURPOSES, n_studies)
    for s, (start, stop) in enumerate(zip([0, *cuts], [*cuts, n])):
        for j in range(start, stop):
            one = _series(r, d, s, j + 1, date.strftime("%Y%m%d"), purposes[s])
            one.patient = i
            series.append(one)
        date += dt.timedelta(days=r.randint(40, 420))
    birth = first - dt.timedelta(days=int(age * 365.25) + r.randint(0, 364))
    return SeedPatient(i, f"SEED{d.index:02d}-{i + 1:05d}", f"{r.choice(SURNAMES)}^{r.choice(GIVEN)}", sex, age,
                       birth.strftime("%Y%m%d"), series)

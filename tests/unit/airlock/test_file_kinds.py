"""What a release's file is, from real files: pydicom's test DICOM, NIfTI written by nibabel,
a torch state dict, safetensors, plots saved by matplotlib; the content wins over the name. And
images wrapped in something else (a zip, a model, an office document) are found in a release."""

import base64
import gzip
import io
import pickle
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from matplotlib.figure import Figure
from pydicom.data import get_testdata_file
from safetensors.torch import save_file

from imaging_workbench.airlock.checks import CheckPolicy, check_release
from imaging_workbench.airlock.file_kinds import HEAD_BYTES, KINDS, describe, kind_of, refusal

CT_SMALL = Path(get_testdata_file("CT_small.dcm"))


def head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def nifti(tmp_path: Path, name: str, image_class=nib.Nifti1Image) -> Path:
    path = tmp_path / name
    nib.save(image_class(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), np.eye(4)), path)
    return path


def plot(tmp_path: Path, name: str) -> Path:
    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    figure.savefig(tmp_path / name)
    return tmp_path / name


def test_a_dicom_file_renamed_to_csv_is_an_image_and_is_refused():
    data = head(CT_SMALL)
    assert kind_of("tables/age.csv", data) == "image"
    reason = refusal("tables/age.csv", data, "review")
    assert "tables/age.csv" in reason and "DICOM" in reason and "as a table" in reason


def test_dicom_without_its_preamble_is_still_an_image():
    ds = pydicom.dcmread(CT_SMALL)
    ds.preamble = None
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=False)
    assert out.getvalue()[128:132] != b"DICM"
    assert describe("counts.csv", out.getvalue()[:HEAD_BYTES]) == ("image", "DICOM")


@pytest.mark.parametrize("image_class, what", [(nib.Nifti1Image, "NIfTI-1"), (nib.Nifti2Image, "NIfTI-2")])
def test_nifti_is_an_image_whatever_its_name(tmp_path, image_class, what):
    path = nifti(tmp_path, "scan.nii", image_class)
    assert describe("results/summary.txt", head(path)) == ("image", what)


def test_a_gzipped_nifti_renamed_is_an_image(tmp_path):
    path = nifti(tmp_path, "scan.nii.gz")
    assert head(path)[:2] == b"\x1f\x8b"
    assert describe("model_input.bin", head(path)) == ("image", "gzip'd NIfTI-1")
    assert refusal("model_input.bin", head(path), "review") is not None


def test_a_zip_of_dicom_files_is_refused_as_an_archive(tmp_path):
    # The attack: wrap the scan so no image signature shows.
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(CT_SMALL, "ct/CT_small.dcm")
    for name in ("bundle.zip", "tables.csv"):
        assert kind_of(name, head(archive)) == "archive"
        assert "files themselves" in refusal(name, head(archive), "review")
    gzipped = tmp_path / "ct.dcm.gz"
    gzipped.write_bytes(gzip.compress(CT_SMALL.read_bytes()))
    assert kind_of("ct.csv", head(gzipped)) == "image"


@pytest.mark.parametrize("name, what", [("plot.png", "PNG"), ("plot.jpg", "JPEG"), ("plot.tiff", "TIFF"),
                                        ("plot.svg", "SVG")])
def test_plots_and_photos_are_images_by_content(tmp_path, name, what):
    path = plot(tmp_path, name)
    assert describe("figure.txt", head(path)) == ("image", what)


def test_numpy_arrays_are_images_and_npz_are_weights(tmp_path):
    np.save(tmp_path / "volume.npy", np.zeros((4, 4, 4)))
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    assert describe("volume.csv", head(tmp_path / "volume.npy")) == ("image", "NumPy array")
    assert kind_of("arrays.npz", head(tmp_path / "arrays.npz")) == "weights"


def test_a_torch_state_dict_is_weights_whatever_its_name(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    assert describe("notes.txt", head(path)) == ("weights", "a PyTorch checkpoint")
    assert refusal("notes.txt", head(path), "review") is None
    assert "airlock.weights" in refusal("notes.txt", head(path), "refuse")
    assert "condition of your access" in refusal("notes.txt", head(path), "no-weights")


def test_safetensors_and_pickles_are_weights(tmp_path):
    save_file({"weight": torch.zeros(2, 3)}, tmp_path / "model.safetensors")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"coef": [1.0, 2.0]}))
    assert describe("table.csv", head(tmp_path / "model.safetensors")) == ("weights", "safetensors")
    assert describe("table.csv", head(tmp_path / "model.pkl")) == ("weights", "a Python pickle")
    assert kind_of("model.onnx", b"\x08\x07\x12\x07pytorch") == "weights"  # ONNX: by its name only


def test_a_report_pdf_is_a_document_for_review(tmp_path):
    path = plot(tmp_path, "report.pdf")
    assert describe("report.pdf", head(path)) == ("document", "PDF")
    assert refusal("report.pdf", head(path), "refuse") is None


@pytest.mark.parametrize("name, content, kind", [
    ("tables/age.csv", b"BMI,count\n20-25,31\n", "table"),  # starts with "BM", like a bitmap
    ("tables/age.tsv", b"age\tcount\n40-49\t12\n", "table"),
    ("acro_out/results.json", b'{"version": "1.0.2", "results": {}}', "acro-results"),
    ("notes/method.md", b"# Method\nWe counted.\n", "text"),
    ("figure.html", b"<!DOCTYPE html><html><body><svg width='10'></svg></body></html>", "text"),
    ("README", "Résumé of the analysis\n".encode(), "text"),
    ("blob.bin", bytes(range(256)) * 4, "other"),
])
def test_files_without_a_signature_are_known_by_their_name_or_text(name, content, kind):
    assert kind_of(name, content) == kind
    assert refusal(name, content, "refuse") is None


def test_every_kind_is_declared_and_a_bad_policy_is_refused():
    assert kind_of("x.csv", head(CT_SMALL)) in KINDS
    with pytest.raises(ValueError, match="weights_policy must be one of review, refuse, no-weights, not 'maybe'"):
        refusal("x.csv", b"a,b\n", "maybe")


def test_compressed_files_are_archives_however_deeply_nested(tmp_path):
    assert describe("age.csv.gz", gzip.compress(b"site,n\nA,12\n")) == ("archive", "a gzip'd file")
    nested = b"site,n\nA,12\n"
    for _ in range(1100):  # nested deeper than Python's recursion limit, to crash a naive reader
        nested = gzip.compress(nested, compresslevel=0)
    assert len(nested) < HEAD_BYTES
    assert kind_of("age.csv", nested[:HEAD_BYTES]) == "archive"


def release(tmp_path, files: dict[str, Path], weights="review"):
    policy = CheckPolicy(min_count=10, weights=weights, acro_python=str(tmp_path / "no-acro-needed"))
    return check_release(files, {}, policy)


def test_a_scan_packed_into_a_model_zip_or_an_office_document_fails(tmp_path):
    # torch.save writes a zip: the attack adds a DICOM file to one, or hides it as a tensor's data.
    for i, inner in enumerate(["model/scan.dcm", "model/data/7"]):
        path = tmp_path / f"model{i}.pt"
        torch.save(torch.nn.Linear(2, 1).state_dict(), path)
        with zipfile.ZipFile(path, "a") as z:
            z.write(CT_SMALL, inner)
        assert kind_of("models/model.pt", head(path)) == "weights"
        [finding] = release(tmp_path, {"models/model.pt": path})
        assert (finding.check, finding.severity, finding.where["entries"]) == ("weights", "fail", [inner])
    report = tmp_path / "report.docx"
    with zipfile.ZipFile(report, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.write(plot(tmp_path, "plot.png"), "word/media/image1.png")
        z.write(CT_SMALL, "word/media/image2.bin")
    scan, review = release(tmp_path, {"report.docx": report})
    assert (scan.check, scan.severity, scan.where["entries"]) == ("embedded-image", "fail",
                                                                  ["word/media/image2.bin (DICOM)"])
    assert (review.check, review.severity) == ("no-automatic-check", "review")


def test_an_image_in_a_table_cell_fails_though_the_counts_pass(tmp_path):
    png = base64.b64encode(plot(tmp_path, "slice.png").read_bytes()).decode()
    table = tmp_path / "age.csv"
    table.write_text(f"age_band,patients,note\n40-49,12,data:image/png;base64,{png}\n")
    [finding] = release(tmp_path, {"tables/age.csv": table})
    assert (finding.check, finding.severity) == ("embedded-image", "fail")
    assert "a data: URI image" in finding.message


def test_a_clean_model_and_an_office_document_with_a_plot_go_to_review(tmp_path):
    model = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 1).state_dict(), model)
    report = tmp_path / "report.docx"
    with zipfile.ZipFile(report, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.write(plot(tmp_path, "plot.png"), "word/media/image1.png")
    findings = release(tmp_path, {"model.pt": model, "report.docx": report})
    assert [(f.file, f.check, f.severity) for f in findings] == [
        ("model.pt", "weights", "review"), ("report.docx", "embedded-image", "review"),
        ("report.docx", "no-automatic-check", "review")]
    assert [(f.check, f.severity) for f in release(tmp_path, {"model.pt": model}, weights="refuse")] == [
        ("weights", "fail")]

"""CaseViewer's Python side: traits, presets, the binary messages it sends, and bad input."""

import re

import numpy as np
import pytest
import traitlets

import imaging_workbench.dicom as dicom
from imaging_workbench.dicom.errors import DamagedFile
from imaging_workbench.dicom.volume import Volume
from imaging_workbench.widgets import CaseViewer
from imaging_workbench.widgets.viewer import STATIC
from imaging_workbench.widgets.windowing import CT_PRESETS, auto_window

from .conftest import BONE, KNOWN, TISSUE


def ready(viewer):
    """What the browser does once the widget's JS has loaded."""
    viewer._handle_custom_msg({"type": "ready"}, [])


def test_ct_opens_on_the_middle_planes_with_the_mediastinum_window(known_ct):
    v = CaseViewer(known_ct)
    assert v.shape == [24, 32, 40]
    assert (v.slice, v.coronal, v.sagittal) == (12, 16, 20)
    assert v.preset == "mediastinum" and (v.window, v.level) == CT_PRESETS["mediastinum"]
    assert v.unit == "HU" and v.dtype == "int16" and v.error == ""
    assert v.spacing == [2.5, 0.8, 0.8]
    assert np.allclose(np.array(v.affine).reshape(4, 4), known_ct.affine)
    assert v.axis_letters == ["L", "P", "S"]
    assert "P001" in v.title


def test_presets_set_window_and_level(known_ct):
    v = CaseViewer(known_ct)
    v.set_preset("lung")
    assert (v.window, v.level) == (1500.0, -600.0)
    v.preset = "bone"
    assert (v.window, v.level) == CT_PRESETS["bone"]
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        v.set_preset("nope")


def test_mr_window_comes_from_percentiles():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4000, size=(8, 16, 16)).astype(np.uint16)
    v = CaseViewer(Volume(a, (1, 1, 1), (0, 0, 0), np.eye(3), "MR", "1.2"))
    lo, hi = np.percentile(a, [1, 99])
    assert list(v.presets) == ["auto"] and v.preset == "auto"
    assert v.window == pytest.approx(hi - lo) and v.level == pytest.approx((hi + lo) / 2)
    assert v.unit == "" and v.dtype == "int16"  # uint16 values under 32768 travel as int16


def test_values_beyond_int16_travel_as_float32():
    a = np.full((2, 3, 4), 40000, dtype=np.uint16)
    assert CaseViewer(Volume(a, (1, 1, 1), (0, 0, 0), np.eye(3), "MR", "1")).dtype == "float32"


def test_auto_window_of_a_constant_image_is_not_zero():
    assert auto_window(np.zeros((2, 2, 2))) == (1.0, 0.0)


def test_slice_outside_the_volume_is_refused(known_ct):
    v = CaseViewer(known_ct)
    v.slice = 23
    with pytest.raises(traitlets.TraitError, match=r"CaseViewer.slice=24 is outside 0..23"):
        v.slice = 24
    with pytest.raises(traitlets.TraitError, match="window must be > 0"):
        v.window = 0


def test_ready_sends_current_planes_first_then_every_slice_once(known_ct, sent, monkeypatch):
    monkeypatch.setattr("imaging_workbench.widgets.viewer.CHUNK_BYTES", 5 * 32 * 40 * 2)  # 5 slices a chunk
    v = CaseViewer(known_ct)
    v.slice, v.coronal, v.sagittal = 3, 10, 30
    log = sent(v)
    ready(v)
    a = known_ct.array
    first, bufs = log[0]
    assert first == {"type": "planes", "index": [3, 10, 30]}
    assert bufs == [a[3].tobytes(), a[:, 10, :].tobytes(), a[:, :, 30].tobytes()]
    chunks = [(c, b[0]) for c, b in log[1:] if c["type"] == "chunk"]
    assert chunks[0][0]["z0"] <= 3 < chunks[0][0]["z1"], "the chunk holding the current slice goes first"
    rebuilt = np.empty_like(a)
    seen = []
    for c, b in chunks:
        rebuilt[c["z0"]:c["z1"]] = np.frombuffer(b, dtype="<i2").reshape(c["z1"] - c["z0"], 32, 40)
        seen += range(c["z0"], c["z1"])
    assert sorted(seen) == list(range(24))
    assert np.array_equal(rebuilt, a)
    assert all(len(b) <= 5 * 32 * 40 * 2 for _, b in chunks)


def test_nothing_is_sent_before_the_browser_is_ready(known_ct, sent):
    v = CaseViewer(known_ct)
    log = sent(v)
    v.show_mask(np.ones(known_ct.shape, bool))
    v.clear_mask()
    assert log == []
    ready(v)
    assert log[0][0]["type"] == "planes"


def test_show_mask_overlays_segments_and_sends_labels(known_ct, sent):
    v = CaseViewer(known_ct)
    ready(v)
    log = sent(v)
    mask = np.zeros(known_ct.shape, np.uint8)
    mask[TISSUE] = 1
    mask[BONE] = 2
    v.show_mask(mask, [{"number": 2, "label": "bone", "color": (1.0, 1.0, 1.0)}], opacity=0.7)
    assert [s["number"] for s in v.segments] == [2]
    assert v.segments[0] == {"number": 2, "label": "bone", "color": "#ffffff"}
    assert v.visible_segments == [2] and v.overlay_opacity == 0.7 and v.mask_version == 1
    kinds = [c["type"] for c, _ in log]
    assert kinds[0] == "mask_planes" and set(kinds[1:]) == {"mask_chunk"}
    assert log[0][1][0] == mask[v.slice].tobytes()


def test_boolean_mask_is_segment_one_with_a_default_colour(known_ct):
    v = CaseViewer(known_ct)
    mask = np.zeros(known_ct.shape, bool)
    mask[TISSUE] = True
    v.show_mask(mask)
    assert v.segments == [{"number": 1, "label": "segment 1", "color": "#e6194b"}]
    v.clear_mask()
    assert v.segments == [] and v.mask_version == 2


def test_mask_of_the_wrong_shape_is_a_clear_error(known_ct):
    v = CaseViewer(known_ct)
    with pytest.raises(ValueError, match=re.escape("mask shape (24, 32, 39) does not match the volume's "
                                                   "(z, y, x) shape (24, 32, 40)")):
        v.show_mask(np.zeros((24, 32, 39), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        v.show_mask(np.full(known_ct.shape, 300, np.int32))


def test_segmentation_pair_is_shown_at_construction(known_ct):
    labels = np.zeros(known_ct.shape, np.uint8)
    labels[TISSUE] = 3
    v = CaseViewer(known_ct, segmentation=(labels, [{"number": 3, "label": "tumour", "color": "#00ff00"}]))
    assert v.segments == [{"number": 3, "label": "tumour", "color": "#00ff00"}]


def test_loader_error_is_shown_inside_the_widget(monkeypatch):
    def broken(source):
        raise DamagedFile(f"{source}/1.dcm is truncated", "re-copy the series")

    monkeypatch.setitem(vars(dicom), "load_series", broken)
    v = CaseViewer("/data/x/series")
    assert "1.dcm is truncated" in v.error and "re-copy the series" in v.error
    assert v.shape == [0, 0, 0]
    with pytest.raises(RuntimeError, match="failed to load"):
        v.show_mask(np.zeros((1, 1, 1)))


def test_segmentation_error_keeps_the_images(known_ct, monkeypatch):
    def broken(seg, reference):
        raise DamagedFile("seg.dcm does not reference this series")

    monkeypatch.setitem(vars(dicom), "load_segmentation", broken)
    v = CaseViewer(known_ct, segmentation="/data/x/seg.dcm")
    assert v.error.startswith("segmentation not shown: seg.dcm")
    assert v.shape == [24, 32, 40]


def test_a_plain_array_is_a_volume_with_unit_spacing():
    v = CaseViewer(np.zeros((3, 4, 5), np.int16))
    assert v.shape == [3, 4, 5] and v.spacing == [1.0, 1.0, 1.0] and v.modality == "CT"
    with pytest.raises(ValueError, match="must be 3-D"):
        CaseViewer(np.zeros((4, 5)))


def test_front_end_ships_in_the_package_and_fetches_nothing():
    js = (STATIC / "viewer.js").read_text()
    css = (STATIC / "viewer.css").read_text()
    assert "export default" in js
    for text in (js, css):
        assert not re.search(r"https?://", text)
        assert "import(" not in text and not re.search(r"^\s*import ", text, re.M)
        assert "@import" not in text and "url(" not in text


def test_a_repeated_ready_is_answered_once_per_browser(known_ct, sent):
    v = CaseViewer(known_ct)
    log = sent(v)
    for token in ("page-a", "page-a", "page-b"):
        v._handle_custom_msg({"type": "ready", "token": token}, [])
    assert [c["type"] for c, _ in log].count("planes") == 2

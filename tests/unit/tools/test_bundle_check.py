"""What `workbench tools add` refuses before anything enters the catalogue (tools/bundle_check.py,
tools/archive.py): code in a bundle's configs or card, classes off the allow-list, weights that
differ from the card, metadata MONAI's own checks refuse, and archives that would write outside
their folder. Each refusal names the tool, the file (and JSON path) and what to do."""

import hashlib
import io
import json
import os
import tarfile
import zipfile

import pytest

from imaging_workbench.tools.archive import unpack
from imaging_workbench.tools.bundle_check import check_bundle
from imaging_workbench.tools.card import ToolRefused


def refusal(folder, settings) -> str:
    with pytest.raises(ToolRefused) as e:
        check_bundle(folder, settings)
    return str(e.value)


def test_a_well_formed_bundle_passes_every_check(make_bundle, settings):
    card = check_bundle(make_bundle(), settings)
    assert (card["id"], card["version"]) == ("tumour-seg", "1.0.0")
    assert card["io"]["outputs"]["pred"]["num_channels"] == 2  # taken from metadata.json


def test_weights_that_differ_from_the_card_are_refused_naming_both_hashes(make_bundle, settings):
    folder = make_bundle(card={"weights": {"sha256": "0" * 64}})
    actual = hashlib.sha256((folder / "models" / "model.pt").read_bytes()).hexdigest()
    message = refusal(folder, settings)
    assert "tool tumour-seg 1.0.0" in message and actual in message and "0" * 64 in message
    assert "what to do" in message


def test_a_dollar_expression_in_a_config_is_refused_and_never_evaluated(make_bundle, settings, tmp_path):
    pwned = tmp_path / "pwned"
    expression = f"$__import__('pathlib').Path({str(pwned)!r}).touch()"
    folder = make_bundle(configs={"inference.json": {"imports": [expression], "network_def": {
        "_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8],
        "strides": [2], "num_res_units": 0, "act": expression}}})
    message = refusal(folder, settings)
    assert "configs/inference.json at imports#0: is a Python expression" in message
    assert "configs/inference.json at network_def#act: is a Python expression" in message
    assert not pwned.exists()


def test_an_expression_in_the_cards_network_args_is_refused_before_monai_parses_it(make_bundle, settings, tmp_path):
    pwned = tmp_path / "pwned"
    folder = make_bundle(card={"network": {"args": {"act": f"$__import__('pathlib').Path({str(pwned)!r}).touch()"}}})
    assert "network.args.act" in refusal(folder, settings)
    assert not pwned.exists()


@pytest.mark.parametrize("target", ["monai.engines.SupervisedEvaluator", "os.system", "torch.hub.load",
                                    "monai.transforms.Lambdad"])
def test_a_target_off_the_allow_list_is_refused_naming_file_and_path(make_bundle, settings, target):
    folder = make_bundle(configs={"evaluate.json": {"evaluator": {"_target_": target, "device": "cpu"}}})
    message = refusal(folder, settings)
    assert f"configs/evaluate.json at evaluator#_target_: names {target!r}" in message


def test_a_macro_reading_another_file_is_refused(make_bundle, settings):
    folder = make_bundle(configs={"inference.json": {"network_def": "%/etc/passwd#root", "copy": "%#network_def"}})
    message = refusal(folder, settings)
    assert "configs/inference.json at network_def: is a macro reading another file" in message
    assert "at copy" not in message  # a macro within the file copies content that is checked too


def test_a_yaml_config_is_read_as_data_and_checked_too(make_bundle, settings):
    folder = make_bundle(configs={"train.yaml": "trainer:\n  _target_: monai.engines.SupervisedTrainer\n"})
    assert "configs/train.yaml at trainer#_target_" in refusal(folder, settings)


def test_a_loader_reader_outside_monais_own_is_refused(make_bundle, settings):
    folder = make_bundle(card={"preprocessing": [{"name": "LoadImaged", "args": {"keys": ["image"],
                                                                                  "reader": "os.system"}}]})
    assert "preprocessing[0].args.reader: LoadImaged takes" in refusal(folder, settings)


@pytest.mark.parametrize("card, field", [
    ({"intended_use": "Clinical decision support."}, "intended_use"),
    ({"network": {"class": "TorchVisionFCModel"}}, "network.class"),
    ({"preprocessing": [{"name": "SaveImaged", "args": {}}]}, "preprocessing.0.name"),
    ({"version": "../1"}, "version"),
])
def test_a_card_outside_its_schema_is_refused_naming_the_field(make_bundle, settings, card, field):
    assert f"\n  {field}: " in refusal(make_bundle(card=card), settings)


def test_metadata_missing_a_required_key_fails_monais_verify_metadata(make_bundle, settings):
    folder = make_bundle()
    meta = folder / "configs" / "metadata.json"
    meta.write_text(meta.read_text().replace('"authors"', '"writers"'))
    message = refusal(folder, settings)
    assert "verify_metadata" in message and "authors" in message


def test_a_network_that_disagrees_with_network_data_format_fails_verify_net_in_out(make_bundle, settings):
    folder = make_bundle(metadata={"network_data_format": {"outputs": {"pred": {"num_channels": 3}}}})
    message = refusal(folder, settings)
    assert "verify_net_in_out" in message and "output channel number `2` doesn't match: `3`" in message


def test_weights_of_another_network_shape_are_refused_by_the_strict_load(make_bundle, settings):
    # The card and metadata agree on 3 output channels, but the weights were trained with 2.
    folder = make_bundle(card={"network": {"args": {"out_channels": 3}}},
                         metadata={"network_data_format": {"outputs": {"pred": {"num_channels": 3}}}})
    assert "do not load into UNet" in refusal(folder, settings)


def test_weights_missing_keys_of_the_cards_network_are_refused_not_loaded_in_part(make_bundle, settings):
    # Residual units add layers the saved weights lack: a lenient load would leave them random.
    message = refusal(make_bundle(card={"network": {"args": {"num_res_units": 1}}}), settings)
    assert "do not load into UNet" in message and "Missing key(s)" in message


def test_a_card_needing_more_memory_than_any_sandbox_has_is_refused(make_bundle, settings):
    message = refusal(make_bundle(card={"needs": {"memory": "64G"}}), settings)
    assert "needs 64G of memory" in message and "large (12G)" in message
    settings["sandbox"]["profiles"].pop("gpu")
    assert "none with a GPU" in refusal(make_bundle("gpu", card={"needs": {"gpu": True}}), settings)


def test_a_symlink_inside_a_bundle_folder_is_refused(make_bundle, settings):
    folder = make_bundle()
    os.symlink("/etc/passwd", folder / "configs" / "notes.txt")
    assert "configs/notes.txt is a link or special file" in refusal(folder, settings)


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("member", ["../escaped.txt", "bundle/../../escaped.txt", "/tmp/escaped-absolute.txt"])
def test_an_archive_member_outside_the_bundle_is_refused_and_nothing_is_written(tmp_path, member):
    info = tarfile.TarInfo(member)
    info.size = 3
    archive = _tar(tmp_path / "evil.tar.gz", [(info, b"bad")])
    out = tmp_path / "out" / "inner"
    with pytest.raises(ToolRefused, match="points outside the bundle"):
        unpack(archive, out)
    assert list(out.iterdir()) == [] and not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_a_link_or_device_in_a_tar_archive_is_refused(tmp_path, kind):
    info = tarfile.TarInfo("bundle/models/model.pt")
    info.type, info.linkname = kind, "/etc/shadow"
    archive = _tar(tmp_path / "evil.tar.gz", [(info, None)])
    with pytest.raises(ToolRefused, match="is a link or special file"):
        unpack(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_symlink_or_dotdot_in_a_zip_archive_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("bundle/configs/metadata.json")
        link.external_attr = (0o120777 << 16)  # a symlink, as Info-ZIP stores one
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ToolRefused, match="is a link or special file"):
        unpack(archive, tmp_path / "out")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.txt", "bad")
    with pytest.raises(ToolRefused, match="points outside the bundle"):
        unpack(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_an_archive_that_unpacks_past_the_limit_is_refused_before_anything_is_written(tmp_path):
    zeros = b"\0" * (2 << 20)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle/models/model.pt", zeros)
    info = tarfile.TarInfo("bundle/models/model.pt")
    info.size = len(zeros)
    _tar(tmp_path / "bomb.tar.gz", [(info, zeros)])
    for archive in (tmp_path / "bomb.zip", tmp_path / "bomb.tar.gz"):
        assert archive.stat().st_size < 20_000  # what an upload limit sees
        with pytest.raises(ToolRefused, match=r"unpacks to 1 files and 2,097,152 bytes, more than .* 1,048,576 bytes"):
            unpack(archive, tmp_path / "out", max_bytes=1 << 20)
        assert list((tmp_path / "out").iterdir()) == []
        assert unpack(archive, tmp_path / "ok", max_bytes=4 << 20)  # under the limit: unpacked


def test_a_zip_member_that_lies_about_its_size_writes_no_more_than_it_declared(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle/models/model.pt", b"\0" * (2 << 20))
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")  # the declared unpacked size
    archive.write_bytes(bytes(data))
    with pytest.raises(ToolRefused, match="cannot be unpacked"):
        unpack(archive, tmp_path / "out", max_bytes=1 << 20)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_archive_of_more_files_than_a_bundle_holds_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("imaging_workbench.tools.archive.MAX_MEMBERS", 50)
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as zf:
        for i in range(51):
            zf.writestr(f"bundle/docs/{i}.txt", "")
    with pytest.raises(ToolRefused, match="unpacks to 51 files and 0 bytes, more than the 50 files"):
        unpack(tmp_path / "many.zip", tmp_path / "out")


class OpensAFile:
    """Pickles as a call to open(): what a hostile weights file could make torch.load run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_weights_that_would_run_code_when_unpickled_are_refused_and_nothing_runs(make_bundle, settings, tmp_path):
    import torch

    folder = make_bundle()
    pwned = tmp_path / "pwned"
    weights = folder / "models" / "model.pt"
    torch.save({"model.0.conv.weight": OpensAFile(pwned)}, weights)
    data = weights.read_bytes()
    card = folder / "workbench_card.json"
    card.write_text(card.read_text().replace(json.loads(card.read_text())["weights"]["sha256"],
                                             hashlib.sha256(data).hexdigest())
                    .replace(f'"size": {json.loads(card.read_text())["weights"]["size"]}', f'"size": {len(data)}'))
    assert "do not load into UNet" in refusal(folder, settings)
    assert not pwned.exists()

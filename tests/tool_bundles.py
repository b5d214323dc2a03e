"""Real, tiny MONAI bundles on disk, for the tools tests of every tier: `write_bundle(folder,
card=..., metadata=..., configs=...)` writes a small 3D UNet's random weights (torch.save of its
state_dict), a real configs/metadata.json, an inference.json of allow-listed classes only, and
workbench_card.json with the weights' true SHA-256 and size; `card`/`metadata` are merged over the
defaults, `configs` adds or replaces config files by name."""

import copy
import hashlib
import json

NETWORK = {"class": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8],
                                     "strides": [2], "num_res_units": 0}}
TENSOR = {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1, "spatial_shape": [16, 16, 16],
          "dtype": "float32", "value_range": [-1000, 1000], "is_patch_data": True, "channel_def": {"0": "image"}}
METADATA = {
    "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
    "version": "0.1.0", "monai_version": "1.6.1", "pytorch_version": "2.13.0", "numpy_version": "2.0.0",
    "optional_packages_version": {}, "task": "Tumour segmentation", "description": "A tiny test UNet",
    "authors": "workbench tests", "copyright": "none",
    "network_data_format": {"inputs": {"image": TENSOR},
                            "outputs": {"pred": {**TENSOR, "format": "segmentation", "num_channels": 2,
                                                 "value_range": [0, 1],
                                                 "channel_def": {"0": "background", "1": "tumour"}}}},
}
CARD = {
    "id": "tumour-seg", "version": "1.0.0", "kind": "segmentation", "modality": "CT", "body_part": "chest",
    "intended_use": "Research use only, not for diagnosis.", "licences": ["Apache-2.0"],
    "needs": {"gpu": False, "memory": "2G"}, "provenance": {"made_by": "tests"}, "network": NETWORK,
    "preprocessing": [{"name": "LoadImaged", "args": {"keys": ["image"]}},
                      {"name": "EnsureChannelFirstd", "args": {"keys": ["image"]}},
                      {"name": "ScaleIntensityRanged", "args": {"keys": ["image"], "a_min": -1000, "a_max": 1000,
                                                                "b_min": 0, "b_max": 1, "clip": True}}],
    "postprocessing": [{"name": "Activationsd", "args": {"keys": ["pred"], "softmax": True}},
                       {"name": "Invertd", "args": {"keys": ["pred"], "transform": "preprocessing",
                                                    "orig_keys": ["image"]}},
                       {"name": "AsDiscreted", "args": {"keys": ["pred"], "argmax": True}}],
    "inference": {"roi_size": [16, 16, 16], "sw_batch_size": 1, "overlap": 0.25},
}
INFERENCE = {"network_def": {"_target_": "monai.networks.nets.UNet", **NETWORK["args"]},
             "preprocessing": {"_target_": "Compose", "transforms": [
                 {"_target_": "LoadImaged", "keys": "image"}, {"_target_": "EnsureChannelFirstd", "keys": "image"}]},
             "network": "@network_def"}


def merged(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out



def write_bundle(folder, card=None, metadata=None, configs=None):
    import torch
    from monai.networks.nets import UNet

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    torch.manual_seed(0)
    torch.save(UNet(**NETWORK["args"]).state_dict(), folder / "models" / "model.pt")
    data = (folder / "models" / "model.pt").read_bytes()
    full = merged(CARD, {"weights": {"file": "models/model.pt", "sha256": hashlib.sha256(data).hexdigest(),
                                     "size": len(data)}})
    (folder / "workbench_card.json").write_text(json.dumps(merged(full, card or {})))
    (folder / "configs" / "metadata.json").write_text(json.dumps(merged(METADATA, metadata or {})))
    for file, content in {"inference.json": INFERENCE, **(configs or {})}.items():
        (folder / "configs" / file).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder

"""Everything `workbench tools add` checks about a bundle folder before it enters the catalogue.

In order: the card (card.py); no links or special files; every config file read as data and
refused if it holds code (config_scan.py); the weights' size and SHA-256; MONAI's own
`verify_metadata` against the metadata schema shipped in this package; MONAI's
`verify_net_in_out` on a config the workbench writes itself (only `network_def`, from the card's
allow-listed class and plain args: never the bundle's config); the weights loading strictly into
that network; and the card's memory need against the deployment's sandbox profiles.
"""

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from ..deployment import parse_memory
from .card import METADATA_FILE, ToolRefused, check_weights, label, read_card
from .config_scan import config_problems
from .loader import build_network, load_weights

# Our own JSON Schema of metadata.json, written from the MONAI Bundle specification's mandatory
# keys: MONAI's published meta schema could not be had offline. verify_metadata downloads a schema
# only when this file is missing, so its absence is an error here, never a download.
METADATA_SCHEMA = Path(__file__).with_name("metadata_schema.json")
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def check_files(folder: Path) -> None:
    """Refuse links and special files anywhere in the bundle: a link could copy a file from
    outside the bundle into the catalogue, or point the loader elsewhere later."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ToolRefused(f"{label(folder)}: {path.relative_to(folder)} is a link or special file",
                                  "replace it by the file itself and add the bundle again")


def _read_config(path: Path):
    import yaml

    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise ToolRefused(f"{label(path.parent.parent)}: {path.name} cannot be read ({e})",
                          "fix the file and add the bundle again") from None


def check_configs(folder: Path, card: dict) -> None:
    """Refuse a bundle whose configs hold code, naming each file and JSON path."""
    problems = []
    for path in sorted((folder / "configs").rglob("*")):
        if path.suffix in CONFIG_SUFFIXES:
            problems += [f"{path.relative_to(folder)} at {where}: {why}"
                         for where, why in config_problems(_read_config(path))]
    if problems:
        raise ToolRefused(f"{label(card)}: its configs hold code the workbench will not run:\n  "
                          + "\n  ".join(problems),
                          "remove these entries (the workbench rebuilds the tool from its card: network and "
                          "transforms from the allow-list, with plain args) and add the bundle again")


def check_metadata(folder: Path, card: dict) -> None:
    """MONAI's verify_metadata against the schema shipped here (no download)."""
    from monai.bundle import verify_metadata

    if not METADATA_SCHEMA.is_file():
        raise ToolRefused(f"the metadata schema {METADATA_SCHEMA} is missing", "reinstall imaging_workbench")
    try:
        # The file is ours and present; its hash is passed only so MONAI does not warn about checking none.
        verify_metadata(meta_file=str(folder / METADATA_FILE), filepath=str(METADATA_SCHEMA), create_dir=False,
                        hash_val=hashlib.md5(METADATA_SCHEMA.read_bytes()).hexdigest(), hash_type="md5")
    except (ValueError, KeyError) as e:
        raise ToolRefused(f"{label(card)}: {METADATA_FILE} fails MONAI's verify_metadata: {e}",
                          "give metadata.json every key of the MONAI Bundle specification, and a 'schema' "
                          "entry") from None


def check_network(card: dict) -> None:
    """MONAI's verify_net_in_out on a config we write: `network_def` from the card only."""
    from monai.bundle import verify_net_in_out

    build_network(card)  # refuses args that are not plain before MONAI's parser sees them
    with tempfile.TemporaryDirectory(prefix="tool-verify-") as tmp:
        config, meta = Path(tmp, "network.json"), Path(tmp, "metadata.json")
        config.write_text(json.dumps({"network_def": {"_target_": f"monai.networks.nets.{card['network']['class']}",
                                                      **card["network"]["args"]}}))
        meta.write_text(json.dumps({"network_data_format": card["io"]}))
        try:
            verify_net_in_out(net_id="network_def", meta_file=str(meta), config_file=str(config), device="cpu")
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise ToolRefused(f"{label(card)}: MONAI's verify_net_in_out refuses the network the card describes "
                              f"against metadata.json's network_data_format: {str(e)[:500]}",
                              "make network.args and network_data_format agree (channels, shape, dtype)") from None


def check_memory(card: dict, settings: dict) -> None:
    """Refuse a card needing more memory than any sandbox profile gives (with a GPU, if it needs one)."""
    profiles = settings["sandbox"]["profiles"]
    fitting = {name: p for name, p in profiles.items() if p.get("gpus", 0) > 0 or not card["needs"]["gpu"]}
    need = parse_memory(card["needs"]["memory"])
    if not any(parse_memory(p["memory"]) >= need for p in fitting.values()):
        offered = ", ".join(f"{n} ({p['memory']})" for n, p in fitting.items()) or "none with a GPU"
        raise ToolRefused(f"{label(card)} needs {card['needs']['memory']} of memory"
                          f"{' and a GPU' if card['needs']['gpu'] else ''}; no sandbox profile offers it: {offered}",
                          "add a larger profile to the deployment settings (sandbox.profiles), or a smaller tool")


def check_bundle(folder: Path, settings: dict) -> dict:
    """Check the bundle in `folder` for the catalogue; returns its card.

    Raises:
        ToolRefused: the first check that fails, naming the tool, the file (and JSON path) and what to do.
    """
    folder = Path(folder)
    check_files(folder)
    card = read_card(folder)
    check_configs(folder, card)
    weights = check_weights(folder, card)
    check_memory(card, settings)
    check_metadata(folder, card)
    check_network(card)
    load_weights(build_network(card), weights, card)
    return card

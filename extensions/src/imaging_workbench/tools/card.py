"""The model card: what a tool is, what it is for, and exactly how to rebuild it.

A bundle carries its card as `workbench_card.json` next to `configs/`; its input/output spec
(`io`) is always taken from the bundle's own `configs/metadata.json` (`network_data_format`),
so the two cannot disagree. The card is validated by one JSON Schema (`CARD_SCHEMA`), whose
network and transform names come from allowlist.py.
"""

import hashlib
import json
import sys
from pathlib import Path

sys.modules.setdefault("rfc3987_syntax", None)  # see settings_schema.py: a 3 s import jsonschema does not need

from jsonschema import Draft202012Validator

from ..errors import WorkbenchError
from .allowlist import NETWORKS, TRANSFORMS

CARD_FILE = "workbench_card.json"
METADATA_FILE = "configs/metadata.json"
KINDS = ("segmentation", "classification", "features")
MODALITIES = ("CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "XA")
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
VERSION_PATTERN = r"^[0-9A-Za-z]+([.+-][0-9A-Za-z]+)*$"  # no "..", no "/": it names a folder


class ToolRefused(WorkbenchError):
    """A tool (bundle, card or request) the workbench will not take or run; the message names it."""


def _steps() -> dict:
    return {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": {"enum": sorted(TRANSFORMS)}, "args": {"type": "object"}}}}


CARD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": False,
    "required": ["id", "version", "kind", "modality", "body_part", "intended_use", "licences", "weights",
                 "needs", "provenance", "network", "preprocessing", "postprocessing", "inference", "io"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN, "maxLength": 63},
        "version": {"type": "string", "pattern": VERSION_PATTERN, "maxLength": 32},
        "title": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "modality": {"enum": list(MODALITIES)},
        "body_part": {"type": "string", "minLength": 1},
        # Both phrases, so no card can be approved that claims more than research use.
        "intended_use": {"type": "string", "allOf": [{"pattern": "[Rr]esearch use"},
                                                     {"pattern": "[Nn]ot for (clinical )?diagnos"}]},
        "licences": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "weights": {"type": "object", "additionalProperties": False, "required": ["file", "sha256", "size"],
                    "properties": {"file": {"type": "string", "pattern": r"^models/[A-Za-z0-9_.-]+\.(pt|pth)$"},
                                   "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                   "size": {"type": "integer", "minimum": 1}}},
        "needs": {"type": "object", "additionalProperties": False, "required": ["gpu", "memory"],
                  "properties": {"gpu": {"type": "boolean"},
                                 "memory": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?[KMGT]?$"}}},
        "provenance": {"type": ["string", "object"]},
        "network": {"type": "object", "additionalProperties": False, "required": ["class", "args"],
                    "properties": {"class": {"enum": sorted(NETWORKS)}, "args": {"type": "object"}}},
        "preprocessing": _steps(),
        "postprocessing": _steps(),
        "inference": {"type": "object", "additionalProperties": False,
                      "required": ["roi_size", "sw_batch_size", "overlap"],
                      "properties": {"roi_size": {"type": "array", "minItems": 1, "maxItems": 3,
                                                  "items": {"type": "integer", "minimum": 1}},
                                     "sw_batch_size": {"type": "integer", "minimum": 1},
                                     "overlap": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}},
        "io": {"type": "object", "required": ["inputs", "outputs"],
               "properties": {"inputs": {"type": "object", "required": ["image"]},
                              "outputs": {"type": "object", "required": ["pred"]}}},
    },
}
_VALIDATOR = Draft202012Validator(CARD_SCHEMA)


def label(card_or_folder) -> str:
    """How messages name a tool: `id version` from a card, else the bundle's path."""
    if isinstance(card_or_folder, dict) and card_or_folder.get("id"):
        return f"tool {card_or_folder['id']} {card_or_folder.get('version', '')}".rstrip()
    return f"tool bundle {card_or_folder}"


def card_problems(card: dict) -> list[str]:
    """Every way `card` breaks CARD_SCHEMA, each naming the field (`weights.sha256: ...`)."""
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<card>'}: {e.message}"
            for e in sorted(_VALIDATOR.iter_errors(card), key=lambda e: list(map(str, e.absolute_path)))]


def _json_file(folder: Path, name: str, what: str):
    path = folder / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ToolRefused(f"{label(folder)}: {what} {name} is missing",
                          "a tool bundle holds configs/metadata.json, models/<weights> and workbench_card.json") \
            from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ToolRefused(f"{label(folder)}: {name} is not JSON ({e})", "fix the file and add it again") \
            from None


def read_card(folder: Path) -> dict:
    """The card of the bundle in `folder`, its `io` taken from configs/metadata.json, validated.

    Raises:
        ToolRefused: no card or metadata, not JSON, or a card that breaks the schema (every problem
            listed, each naming its field).
    """
    folder = Path(folder)
    card = _json_file(folder, CARD_FILE, "model card")
    metadata = _json_file(folder, METADATA_FILE, "metadata")
    if not isinstance(card, dict) or not isinstance(metadata, dict):
        raise ToolRefused(f"{label(folder)}: the card and metadata.json must be JSON objects", "fix them")
    card = {**card, "io": metadata.get("network_data_format")}
    problems = card_problems(card)
    if problems:
        raise ToolRefused(f"{label(card)}: its model card ({CARD_FILE}, io from {METADATA_FILE}) is invalid:\n  "
                          + "\n  ".join(problems), "correct the card and add the bundle again")
    return card


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights(folder: Path, card: dict) -> Path:
    """The weights file of `card` in `folder`, after checking its size and SHA-256 against the card.

    Raises:
        ToolRefused: missing, not a plain file, or its size or hash differs (both hashes named).
    """
    path = Path(folder) / card["weights"]["file"]
    if path.is_symlink() or not path.is_file():
        raise ToolRefused(f"{label(card)}: weights file {card['weights']['file']} is missing or not a plain file",
                          "put the weights the card names into the bundle's models/ folder")
    size, actual = path.stat().st_size, sha256_file(path)
    if actual != card["weights"]["sha256"] or size != card["weights"]["size"]:
        raise ToolRefused(f"{label(card)}: weights {card['weights']['file']} have SHA-256 {actual} ({size} bytes), "
                          f"the card says {card['weights']['sha256']} ({card['weights']['size']} bytes)",
                          "these are not the weights that were reviewed: get the right file from the tool's "
                          "publisher, or have a new version of the card reviewed")
    return path

"""An approved tool as it travels in a federated job, and how a site loads it.

The hub packs the approved card and the weights file as they are in the catalogue (one zip:
`workbench_card.json`, `model.pt`). A site trusts nothing in it: the weights must match the
card's SHA-256 and size, the network is built only from the allow-list with the card's plain
args (loader.build_network), the weights are read as tensors only, and the pre- and
post-processing come from the fixed transform set; nothing of a bundle's own config travels.
"""

import hashlib
import io
import json
import zipfile

from .card import ToolRefused, card_problems, label
from .loader import build_network, build_transforms, load_weights

CARD, WEIGHTS = "workbench_card.json", "model.pt"


def pack(card: dict, weights: bytes) -> bytes:
    """The card and the weights file's bytes as one zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(CARD, json.dumps(card, sort_keys=True))
        z.writestr(WEIGHTS, weights)
    return out.getvalue()


def is_package(data: bytes) -> bool:
    """A tool package (a torch checkpoint is a zip too, without a card)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return sorted(z.namelist()) == sorted([CARD, WEIGHTS])
    except zipfile.BadZipFile:
        return False


def load_package(data: bytes):
    """(network, preprocessing, postprocessing, card) of a tool package, checked as above.

    Raises:
        ToolRefused: weights that differ from the card, or a card or weights that do not build.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        card, weights = json.loads(z.read(CARD)), z.read(WEIGHTS)
    problems = card_problems(card) if isinstance(card, dict) else ["not a JSON object"]
    if problems:
        raise ToolRefused(f"{label(card)}: the card sent is not a valid card ({'; '.join(problems)[:500]})",
                          "the hub sends an approved tool as the catalogue holds it; tell its operator")
    expected = card["weights"]
    if len(weights) != expected["size"] or hashlib.sha256(weights).hexdigest() != expected["sha256"]:
        raise ToolRefused(f"{label(card)}: the weights sent are not those of its card "
                          f"(sha256 {hashlib.sha256(weights).hexdigest()}, the card's {expected['sha256']})",
                          "the hub sends an approved tool as the catalogue holds it; tell its operator")
    network = load_weights(build_network(card), io.BytesIO(weights), card)
    preprocessing = build_transforms(card, "preprocessing")
    return network, preprocessing, build_transforms(card, "postprocessing", preprocessing), card

"""Loading an approved tool the safe way: the card's allow-listed network class with its args,
weights read as tensors only, and pre/post-processing built from the fixed transform set.

Nothing of a bundle's own config is read here. `torch.load(weights_only=True)` unpickles only
tensors and plain containers, so a weights file cannot run code when it is read, and the file's
SHA-256 is checked against the approved card again first (the folder is read-only, but a copy
might not be). Only tools the catalogue file (`catalog.json`, written at each approval and
retirement) lists as approved load.
"""

import json
from pathlib import Path

from .allowlist import TRANSFORMS, network_class, transform_class
from .card import ToolRefused, check_weights, label, read_card
from .config_scan import plain_problems

CATALOG_FILE = "catalog.json"
PREPROCESSING = "preprocessing"  # what Invertd's `transform` arg may say: the tool's own preprocessing


def args_problems(card: dict) -> list[str]:
    """Why the args of `card`'s network and transforms are not plain values the allow-list
    permits: `network.args.channels: ...`, `preprocessing[0].args.reader: ...`."""
    problems = [f"network.args.{where}: {why}" for where, why in plain_problems(card["network"]["args"])]
    for stage in ("preprocessing", "postprocessing"):
        for i, step in enumerate(card[stage]):
            args = step.get("args", {})
            allowed = TRANSFORMS[step["name"]]
            problems += [f"{stage}[{i}].args.{where}: {why}" for where, why in plain_problems(
                {k: v for k, v in args.items() if k not in allowed})]
            problems += [f"{stage}[{i}].args.{k}: {step['name']} takes {', '.join(map(repr, allowed[k]))} "
                         f"here, not {args[k]!r}" for k in allowed if k in args and args[k] not in allowed[k]]
    return problems


def build_network(card: dict):
    """The card's network class, built with its args (random weights), in eval mode.

    Raises:
        ToolRefused: args that are not plain, or that the class does not take.
    """
    problems = args_problems(card)
    if problems:
        raise ToolRefused(f"{label(card)}: {'; '.join(problems)}", "give plain JSON values in the card")
    try:
        return network_class(card["network"]["class"])(**card["network"]["args"]).eval()
    except (TypeError, ValueError, AssertionError) as e:
        raise ToolRefused(f"{label(card)}: network {card['network']['class']} cannot be built from the card's "
                          f"args ({e})", "correct network.args in the card") from None


def build_transforms(card: dict, stage: str, preprocessing=None):
    """The card's `stage` ("preprocessing" or "postprocessing") as a MONAI Compose.

    `preprocessing` is the built preprocessing, handed to Invertd (which undoes it on the output).
    """
    from monai.transforms import Compose

    steps = []
    for i, step in enumerate(card[stage]):
        args = dict(step.get("args", {}))
        if step["name"] == "Invertd":
            if preprocessing is None:
                raise ToolRefused(f"{label(card)}: {stage}[{i}] Invertd has no preprocessing to invert",
                                  "use Invertd in postprocessing only")
            args["transform"] = preprocessing
        try:
            steps.append(transform_class(step["name"])(**args))
        except (TypeError, ValueError) as e:
            raise ToolRefused(f"{label(card)}: {stage}[{i}] {step['name']} cannot be built from the card's args "
                              f"({e})", f"correct {stage}[{i}].args in the card") from None
    return Compose(steps)


def load_weights(network, path: Path, card: dict):
    """Load `path` into `network` strictly (every key, every shape), reading tensors only."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]  # the checkpoint shape some trainers save
        network.load_state_dict(state, strict=True)
    except Exception as e:  # unpickling refusals, missing or unexpected keys, shape mismatches
        raise ToolRefused(f"{label(card)}: weights {card['weights']['file']} do not load into "
                          f"{card['network']['class']}({card['network']['args']}): {str(e)[:500]}",
                          "the card's network class and args must be those the weights were trained with") \
            from None
    return network


def approved_card(catalog_file: Path, card: dict) -> dict:
    """The approved card of `card`'s tool and version from the catalogue file.

    Raises:
        ToolRefused: the tool is retired, or not approved (a draft, or unknown), or its folder's
            card differs from the approved one.
    """
    try:
        catalog = json.loads(Path(catalog_file).read_text())
    except FileNotFoundError:
        catalog = {"tools": [], "retired": []}
    key = (card["id"], card["version"])
    retired = next((t for t in catalog.get("retired", []) if (t["id"], t["version"]) == key), None)
    if retired:
        raise ToolRefused(f"{label(card)} was retired on {retired['retired_at']}: {retired['reason']}",
                          "use another version ('workbench tools list', or Tools() in a notebook)")
    approved = next((t for t in catalog.get("tools", []) if (t["id"], t["version"]) == key), None)
    if approved is None:
        raise ToolRefused(f"{label(card)} is not approved (a draft, or not in the catalogue {catalog_file})",
                          f"a tool reviewer approves it: workbench tools approve {card['id']} {card['version']}")
    if approved != card:
        raise ToolRefused(f"{label(card)}: the card in its folder differs from the approved card",
                          "the tool's folder was changed after approval: add and review it again")
    return approved


def load_tool(folder: Path, catalog_file: Path | None = None):
    """An approved tool, ready to run: (network, preprocessing, postprocessing, card).

    Args:
        folder: the tool's folder, `<tools>/<id>/<version>`.
        catalog_file: the catalogue of approved tools (default: `<tools>/catalog.json`).

    Raises:
        ToolRefused: not approved or retired, a weights file that differs from the card, or a card
            that does not build; each names the tool and what to do.
    """
    folder = Path(folder)
    card = approved_card(catalog_file or folder.parent.parent / CATALOG_FILE, read_card(folder))
    weights = check_weights(folder, card)
    network = load_weights(build_network(card), weights, card)
    preprocessing = build_transforms(card, "preprocessing")
    postprocessing = build_transforms(card, "postprocessing", preprocessing)
    return network, preprocessing, postprocessing, card

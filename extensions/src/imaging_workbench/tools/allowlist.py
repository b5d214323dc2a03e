"""What a tool may be built from: a fixed set of MONAI network classes and transforms.

A bundle's own config is code (`$` expressions are evaluated, `_target_` builds any class), so
the workbench never runs it: a tool is rebuilt from its card, whose network and transforms must
come from the declarations here. Nothing else in the package names a class a card may use.

Why these: each network is a plain `torch.nn.Module` whose constructor takes only numbers,
strings and lists, so a card's JSON args cannot smuggle a callable or a path in. Each transform
is an array operation on the dictionary of a case with the same kind of args. Left out on
purpose: anything that writes files (`SaveImaged`: results are written by the workbench itself,
to a temporary file and renamed), runs a callable (`Lambdad`), or reads other files; and the
args MONAI turns into classes by name (`LoadImaged(reader=...)`, resolved with `pydoc.locate`),
which are held to MONAI's own readers.
"""

import importlib

NETWORKS = {name: "monai.networks.nets" for name in (
    "UNet", "BasicUNet", "SegResNet", "DynUNet", "AttentionUnet", "SwinUNETR", "DenseNet121")}

READERS = ("ITKReader", "NibabelReader", "NumpyReader", "PILReader", "PydicomReader", "NrrdReader")

# Transform name -> {arg: the values it may take}; an arg not listed takes any plain JSON value.
# Invertd's `transform` can only be the tool's own preprocessing: the loader passes it in.
TRANSFORMS: dict[str, dict[str, tuple]] = {
    # preprocessing
    "LoadImaged": {"reader": READERS},
    "EnsureChannelFirstd": {},
    "EnsureTyped": {},
    "Orientationd": {},
    "Spacingd": {},
    "ScaleIntensityRanged": {},
    "ScaleIntensityd": {},
    "NormalizeIntensityd": {},
    "CropForegroundd": {},
    "Resized": {},
    "Transposed": {},  # an axis order, e.g. the (z, y, x) of a model the federation trained
    # postprocessing
    "Activationsd": {},
    "AsDiscreted": {},
    "KeepLargestConnectedComponentd": {},
    "FillHolesd": {},
    "Invertd": {"transform": ("preprocessing",)},
}
TRANSFORM_MODULE = "monai.transforms"

# Structure an inference config may hold besides the above: neither builds anything of its own.
STRUCTURE = {"Compose": TRANSFORM_MODULE}

# A MONAI config may name a class by its short name or its dotted path.
_BY_PATH = {f"{module}.{name}": name for name, module in
            {**NETWORKS, **{t: TRANSFORM_MODULE for t in TRANSFORMS}, **STRUCTURE}.items()}


def allowed_target(target: str) -> str | None:
    """The class a config's `_target_` names, when it is on the allow-list ("UNet" or
    "monai.networks.nets.UNet" -> "UNet"); None when it is not."""
    if target in NETWORKS or target in TRANSFORMS or target in STRUCTURE:
        return target
    return _BY_PATH.get(target)


def network_class(name: str):
    """The allow-listed network class called `name`.

    Raises:
        KeyError: `name` is not on the allow-list.
    """
    return getattr(importlib.import_module(NETWORKS[name]), name)


def transform_class(name: str):
    """The allow-listed transform class called `name`.

    Raises:
        KeyError: `name` is not on the allow-list.
    """
    TRANSFORMS[name]
    return getattr(importlib.import_module(TRANSFORM_MODULE), name)

"""Notebook and Voila widgets: CaseViewer (three planes, overlay), CaseBrowser, ToolMenu, view_3d.

See README.md in this folder. Everything here works offline: the JavaScript and CSS ship in
the package and nothing is fetched from the web at run time.
"""

import importlib

_LAZY = {"CaseViewer": "viewer", "CaseBrowser": "browser", "view_3d": "view3d", "ToolMenu": "tool_menu"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Reading a bundle's config as data, never as code: what in it would run, and where.

MONAI's ConfigParser evaluates a string that starts with `$` as Python, pulls in another file's
content for `%path#id`, and builds whatever class a `_target_` names. The workbench refuses a
bundle holding any of these outside the allow-list (allowlist.py), so a reviewer never approves
code hidden in a config; the loader never reads these files in any case.
"""

from collections.abc import Iterator

from .allowlist import allowed_target

EXPRESSION, MACRO, REFERENCE = "$", "%", "@"
TARGET = "_target_"


def _walk(node, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, path + (str(key),))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (str(i),))


def json_path(path: tuple) -> str:
    """A location as MONAI's config ids spell it: `network_def#channels#2` (`<root>` for the top)."""
    return "#".join(path) or "<root>"


def config_problems(config) -> list[tuple[str, str]]:
    """What in a bundle config (parsed JSON or YAML) would run code: (json path, problem) pairs.

    Refused: a string starting with `$` (a Python expression), a `%` macro naming another file
    (`%configs/other.json#x`; `%#x` only copies this file's own content, which is checked here
    too), and a `_target_` that is not on the allow-list.
    """
    problems = []
    for path, value in _walk(config):
        where = json_path(path)
        if isinstance(value, str) and value.startswith(EXPRESSION):
            problems.append((where, f"is a Python expression ({value[:60]!r}), which MONAI would evaluate"))
        elif isinstance(value, str) and value.startswith(MACRO) and value[1:].split("#", 1)[0]:
            problems.append((where, f"is a macro reading another file ({value[:60]!r})"))
        elif path and path[-1] == TARGET and not (isinstance(value, str) and allowed_target(value)):
            problems.append((where, f"names {value!r}, which is not on the workbench's allow-list of classes"))
    return problems


def plain_problems(value, path: tuple = ()) -> list[tuple[str, str]]:
    """Why `value` (a card's network or transform args) is not plain JSON data that MONAI's
    ConfigParser would take as it is: (json path, problem) pairs.

    A string may not start with `$`, `%` or `@` (an expression, macro or reference) and a key may
    not start with `_` (`_target_`, `_requires_`, `_mode_` and the like change what is built).
    """
    problems = []
    for where, node in _walk(value, path):
        if isinstance(node, str) and node[:1] in (EXPRESSION, MACRO, REFERENCE):
            problems.append((json_path(where), f"{node[:60]!r} starts with {node[0]!r}: args must be plain values"))
        elif isinstance(node, dict):
            problems += [(json_path(where + (str(k),)), "keys starting with '_' are MONAI's special keys, "
                          "not args") for k in node if str(k).startswith("_")]
        elif node is not None and not isinstance(node, (str, int, float, bool, list, dict)):
            problems.append((json_path(where), f"{type(node).__name__} is not a JSON value"))
    return problems

"""The deployment settings: one YAML file (hub_config/workbench.yaml) that describes a deployment.

Everything has a default, so an empty file (or none) gives the embedded demo deployment.
`load_settings` merges the file over DEFAULTS and checks the result against the schema in
settings_schema.py plus the few checks across keys, reporting every problem at once with the
key's path and its line in the file.
"""

import copy
import os
from pathlib import Path

import yaml

from .errors import WorkbenchError
from .federation.settings import federation_problems
from .settings_schema import Problem, schema_problems

SETTINGS_ENV = "WORKBENCH_SETTINGS"  # names the deployment settings file
OLD_SETTINGS_ENV = "WORKBENCH_SITE"  # the old name of SETTINGS_ENV, still read when that is unset
DEFAULTS: dict = {
    "state_dir": "/var/lib/workbench/state",
    "database_url": None,  # None: SQLite file in state_dir
    # Who may do what beyond researching (see hub/roles.py); every account is a researcher.
    "roles": {
        "operators": ["admin"],  # users, servers' lifecycle, services; never inside a sandbox
        "stewards": {},          # dataset id (or "*" for all) -> names: grants, reviews, audit
        "output_checkers": [],   # airlock reviews
        "tool_reviewers": [],    # approve and retire AI tools
        "clinicians": [],        # open shared dashboards
    },
    # Access requests made in the portal: the longest access anyone may ask for.
    "access": {"max_days": 365},
    # The airlock: results leave a sandbox's ~/outbox only through release requests and output checks.
    "airlock": {
        "acro_python": "/var/lib/workbench/acro-venv/bin/python",  # ACRO's own environment (scripts/ensure_acro.sh)
        "max_file_size": "20M",    # a larger file is refused at submission
        "max_files": 50,           # per release request
        "weights": "review",       # model weights: "review" (checkers decide) or "refuse"
    },
    # HMAC key of the audit trail, kept apart from the database (default: <state_dir>/audit.key).
    "audit_key_file": None,
    "hub": {
        "ip": "127.0.0.1",
        "port": 8000,
        "api_ip": None,  # None: the sandbox bridge's gateway, so sandboxes can reach it
        "api_port": 8081,
        "proxy_api_port": 8001,
        "service_port": 8090,
        "portal_port": 8091,
        "authenticator": "workbench",
    },
    # Login through an OpenID Connect provider, when hub.authenticator is "oidc".
    "oidc": {
        "issuer": None,               # e.g. https://login.example.org/realms/imaging
        "client_id": None,
        "client_secret_file": None,   # read at each use, so a rotated secret needs no restart
        "client_secret_env": None,    # or: the environment variable holding it
        "callback_url": None,         # None: https://<the hub's host>/hub/oauth_callback, from the request
        "scopes": ["openid", "profile", "email"],
        "username_claim": "preferred_username",
        "groups_claim": "groups",
        "login_groups": [],           # the platform's groups: only their members log in
        "role_groups": {"operators": [], "stewards": {}, "output_checkers": [], "tool_reviewers": [],
                        "clinicians": []},
        "login_service": "your institution",
        "discovery_ttl": 3600,
    },
    "sandbox": {
        "image": "workbench-singleuser:latest",
        "network": "workbench-sandbox",
        "subnet": "172.29.248.0/24",
        "pids_limit": 256,
        "home_size": None,
        "home_volume": "workbench-home-{username}",
        "idle_timeout": 3600,
        "revocation_interval": 15,
        "start_timeout": 120,
        "concurrent_spawns": 10,
        "default_profile": "standard",
        "profiles": {
            "standard": {"display": "Standard: 2 CPU, 4 GB", "cpu": 2.0, "memory": "4G"},
            "large": {"display": "Large: 2 CPU, 12 GB", "cpu": 2.0, "memory": "12G"},
            "gpu": {"display": "GPU: 2 CPU, 12 GB, NVIDIA GPU", "cpu": 2.0, "memory": "12G", "gpus": 1},
        },
    },
    # Demo logins for `make up`: who exists, and which datasets each is granted ("all" or a list).
    "demo": {"users": ["alice", "bob", "carol"], "grants": {"alice": "all", "bob": ["lung-ct"]}, "size": "demo"},
    "federation": {},
}


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def with_defaults(overrides: dict) -> dict:
    """`overrides` merged over DEFAULTS (a deep copy; nested mappings merge key by key), not yet validated."""
    return _merge(DEFAULTS, overrides)


def parse_memory(value: str) -> int:
    """'4G' / '512M' / '1024' -> bytes."""
    text = str(value).strip().upper()
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a memory size such as 512M or 4G") from None


def _profile_problems(settings: dict) -> list[Problem]:
    box = settings["sandbox"]
    if box["default_profile"] in box["profiles"]:
        return []
    return [Problem(("sandbox", "default_profile"),
                    f"names no profile: {box['default_profile']!r} (known: {', '.join(box['profiles'])})",
                    "set {key} to one of sandbox.profiles, or add that profile, in {file}")]


def _demo_problems(settings: dict) -> list[Problem]:
    known = [*settings["roles"]["operators"], *settings["demo"]["users"]]
    return [Problem(("demo", "grants", user), f"is not a demo user or operator (known: {', '.join(known)})",
                    "add the name to demo.users, or correct {key}, in {file}")
            for user in settings["demo"]["grants"] if user not in known]


def _oidc_problems(settings: dict) -> list[Problem]:
    if settings["hub"]["authenticator"] != "oidc":
        return []
    oidc = settings["oidc"]
    hint = "set {key} in {file} (see the oidc: section of hub_config/workbench.yaml)"
    problems = [Problem(("oidc", key), "is needed when hub.authenticator is oidc", hint)
                for key in ("issuer", "client_id", "login_groups") if not oidc[key]]
    if not (oidc["client_secret_file"] or oidc["client_secret_env"]):
        problems.append(Problem(("oidc", "client_secret_file"), "is needed when hub.authenticator is oidc (or "
                                "oidc.client_secret_env)", hint))
    return problems


# Checks across keys, each with the key paths it reads: it runs only when the schema found
# nothing wrong at, above or under those paths, so it may index them freely.
CROSS_CHECKS = [
    ([("sandbox", "default_profile"), ("sandbox", "profiles")], _profile_problems),
    ([("roles", "operators"), ("demo", "users"), ("demo", "grants")], _demo_problems),
    ([("state_dir",), ("hub", "service_port"), ("federation",)], federation_problems),
    ([("hub", "authenticator"), ("oidc",)], _oidc_problems),
]


def settings_problems(settings: dict) -> list[Problem]:
    """Everything wrong with deployment settings already merged over DEFAULTS."""
    problems = schema_problems(settings)
    broken = [p.path for p in problems]
    for reads, check in CROSS_CHECKS:
        if not any(bad[:len(read)] == read[:len(bad)] for bad in broken for read in reads):
            problems += [Problem(*p) for p in check(settings)]
    return problems


def validate_settings(settings: dict, path: Path | None = None) -> dict:
    """Return deployment settings merged over DEFAULTS unchanged, or raise naming every problem.

    `path` is only named in the message; `load_settings` also gives each problem its line."""
    report(settings_problems(settings), path)
    return settings


def report(problems: list[Problem], path: Path | None = None, lines: dict | None = None) -> None:
    """Raise one WorkbenchError listing every problem, in file order, with its line when known."""
    if not problems:
        return
    rows = sorted({(_line(lines or {}, p.path), key_name(p.path), p.text, p.hint) for p in problems},
                  key=lambda row: (row[0] is None, row[0] or 0, row[1]))
    where = f"deployment settings file {path}" if path else "deployment settings"
    file = str(path) if path else "the deployment settings"
    said = [(f"line {line}: " if line else "") + f"'{key}' {text}" for line, key, text, _ in rows]
    if len(rows) == 1:
        line, key, _, hint = rows[0]
        raise WorkbenchError(f"{where}{', ' if line else ': '}{said[0]}",
                             hint.replace("{key}", f"'{key}'").replace("{file}", file))
    raise WorkbenchError(f"{where} has {len(rows)} problems:\n  " + "\n  ".join(said),
                         f"fix each key named in {file}; settings_schema.py documents every setting")


def key_name(path: tuple) -> str:
    """('sandbox', 'profiles', 'gpu') -> 'sandbox.profiles.gpu'; list items as federation.sites[0]."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name


def _line(lines: dict, path: tuple) -> int | None:
    """The line of the key at `path`, or of its nearest ancestor in the file (a default has none)."""
    path = tuple(map(str, path))
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path) if path else None


def key_lines(node, path: tuple = (), lines: dict | None = None, twice: list | None = None):
    """Map each key path (as strings) of a composed YAML document to its 1-based line.

    Returns (lines, problems): a key written twice in one mapping is a problem, since YAML
    readers silently keep the last one."""
    lines = {} if lines is None else lines
    twice = [] if twice is None else twice
    if isinstance(node, yaml.MappingNode):
        children = [(str(key.value), key, value) for key, value in node.value if key.value != "<<"]
    elif isinstance(node, yaml.SequenceNode):
        children = [(str(i), item, item) for i, item in enumerate(node.value)]
    else:
        children = []
    for name, mark_node, value in children:
        here, line = path + (name,), mark_node.start_mark.line + 1
        if here in lines:
            twice.append(Problem(here, f"is set twice (lines {lines[here]} and {line}); the last would count",
                                 "remove one of the two {key} lines in {file}"))
            continue
        lines[here] = line
        key_lines(value, here, lines, twice)
    return lines, twice


def settings_file_from_env() -> str | None:
    """The file $WORKBENCH_SETTINGS names, else the file $WORKBENCH_SITE (its old name) names, else None."""
    return os.environ.get(SETTINGS_ENV) or os.environ.get(OLD_SETTINGS_ENV) or None


def settings_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The deployment settings file: the argument, $WORKBENCH_SETTINGS (or its old name
    $WORKBENCH_SITE), or ./hub_config/workbench.yaml."""
    if explicit:
        return Path(explicit)
    from_env = settings_file_from_env()
    if from_env:
        return Path(from_env)
    local = Path("hub_config/workbench.yaml")
    return local if local.is_file() else None


def read_settings_file(path: Path) -> tuple[dict, dict, list[Problem]]:
    """The file's settings, the line of each key path, and the keys it sets twice."""
    if not path.is_file():
        raise WorkbenchError(f"deployment settings file {path} does not exist",
                             f"create it or point {SETTINGS_ENV} at one")
    loader = yaml.SafeLoader(path.read_text())
    try:
        node = loader.get_single_node()
        lines, twice = key_lines(node)  # before construction, which flattens `<<` merge keys
        data = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as e:
        raise WorkbenchError(f"deployment settings file {path} is not valid YAML: {e}",
                             "fix the syntax at the line named") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise WorkbenchError(f"deployment settings file {path} must hold a mapping of settings, "
                             f"not {type(data).__name__}", "see hub_config/workbench.yaml for the layout")
    return data, lines, twice


def load_settings(path: str | os.PathLike | None = None) -> dict:
    """Read the deployment settings file (if any), merge it over DEFAULTS and validate.

    Raises:
        WorkbenchError: naming every problem, each with its key path and line.
    """
    path = settings_path(path)
    data, lines, twice = read_settings_file(path) if path is not None else ({}, {}, [])
    settings = with_defaults(data)
    report(twice + settings_problems(settings), path, lines)
    return settings


def catalog_url(settings: dict) -> str:
    """The catalog's database URL: database_url, or a SQLite file under state_dir."""
    return settings["database_url"] or f"sqlite:///{Path(settings['state_dir']) / 'workbench.sqlite'}"

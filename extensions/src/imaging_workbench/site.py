"""The site file: one YAML document that describes a deployment.

Everything has a default, so an empty file (or none) gives the embedded demo
deployment. `load_site` merges the file over the defaults and validates the
result, naming the key that is wrong and what it should be.
"""

import copy
import ipaddress
import os
from pathlib import Path

import yaml

from .errors import WorkbenchError

SITE_ENV = "WORKBENCH_SITE"

DEFAULTS: dict = {
    "state_dir": "/var/lib/workbench/state",
    "database_url": None,  # None: SQLite file in state_dir
    # Who may do what beyond researching (see hub/roles.py); every account is a researcher.
    "roles": {
        "operators": ["admin"],  # users, servers' lifecycle, services; never inside a sandbox
        "stewards": {},          # dataset id (or "*" for all) -> names: grants, reviews, audit
        "output_checkers": [],   # airlock reviews
        "clinicians": [],        # open shared dashboards
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
        "authenticator": "workbench",
    },
    "sandbox": {
        "image": "workbench-singleuser:latest",
        "network": "workbench-sandbox",
        "subnet": "172.29.248.0/24",
        "pids_limit": 256,
        "idle_timeout": 3600,
        "revocation_interval": 15,
        "start_timeout": 120,
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

_TYPES = {
    "state_dir": str,
    "roles": dict,
    "hub": dict,
    "sandbox": dict,
    "demo": dict,
    "federation": dict,
}
_INT_KEYS = {
    "hub": ["port", "api_port", "proxy_api_port", "service_port"],
    "sandbox": ["pids_limit", "idle_timeout", "revocation_interval", "start_timeout"],
}


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _bad(path: Path | None, key: str, problem: str) -> WorkbenchError:
    where = f"site file {path}" if path else "site settings"
    return WorkbenchError(f"{where}: '{key}' {problem}", f"fix '{key}' in {path or 'the site file'}")


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


def validate_site(site: dict, path: Path | None = None) -> dict:
    """Check types and values; return the site unchanged or raise WorkbenchError."""
    unknown = set(site) - set(DEFAULTS)
    if unknown:
        raise _bad(path, sorted(unknown)[0], f"is not a site setting (known: {', '.join(sorted(DEFAULTS))})")
    for key, kind in _TYPES.items():
        if not isinstance(site[key], kind):
            raise _bad(path, key, f"must be a {kind.__name__}, not {type(site[key]).__name__}")
    if site["database_url"] is not None and not isinstance(site["database_url"], str):
        raise _bad(path, "database_url", "must be a SQLAlchemy URL string such as postgresql+psycopg://user@host/db")
    for section, keys in _INT_KEYS.items():
        for key in keys:
            value = site[section][key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _bad(path, f"{section}.{key}", f"must be a positive integer, not {value!r}")
    try:
        ipaddress.ip_network(site["sandbox"]["subnet"])
    except ValueError:
        raise _bad(path, "sandbox.subnet", f"must be a network such as 172.29.248.0/24, not {site['sandbox']['subnet']!r}")
    profiles = site["sandbox"]["profiles"]
    if not isinstance(profiles, dict) or not profiles:
        raise _bad(path, "sandbox.profiles", "must map profile names to {cpu, memory}")
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            raise _bad(path, f"sandbox.profiles.{name}", "must be a mapping with cpu and memory")
        try:
            parse_memory(profile.get("memory", ""))
            float(profile.get("cpu"))
        except (TypeError, ValueError) as e:
            raise _bad(path, f"sandbox.profiles.{name}", f"needs cpu (a number) and memory (e.g. 4G): {e}")
    if site["sandbox"]["default_profile"] not in profiles:
        raise _bad(path, "sandbox.default_profile", f"names no profile (known: {', '.join(profiles)})")
    return site


def site_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The site file to read: the argument, $WORKBENCH_SITE, or ./hub_config/workbench.yaml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(SITE_ENV):
        return Path(os.environ[SITE_ENV])
    local = Path("hub_config/workbench.yaml")
    return local if local.is_file() else None


def load_site(path: str | os.PathLike | None = None) -> dict:
    """Read the site file (if any), merge it over DEFAULTS and validate."""
    path = site_path(path)
    data = {}
    if path is not None:
        if not path.is_file():
            raise WorkbenchError(f"site file {path} does not exist", f"create it or point {SITE_ENV} at one")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise WorkbenchError(f"site file {path} is not valid YAML: {e}", "fix the syntax at the line named") from None
        if not isinstance(data, dict):
            raise WorkbenchError(f"site file {path} must hold a mapping of settings, not {type(data).__name__}",
                                 "see hub_config/workbench.yaml for the layout")
    return validate_site(_merge(DEFAULTS, data), path)


def catalog_url(site: dict) -> str:
    """The database URL: the site's, or a SQLite file under the state directory."""
    return site["database_url"] or f"sqlite:///{Path(site['state_dir']) / 'workbench.sqlite'}"

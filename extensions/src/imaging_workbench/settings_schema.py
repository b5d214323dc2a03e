"""The JSON Schema (draft 2020-12) of the deployment settings, hub_config/workbench.yaml.

Each key's `description` is its documentation; a `title` says what a value must be, and the
messages of `schema_problems` quote it ("'hub.port' must be a port number from 1 to 65535, not
'eighty'"). Every mapping of fixed keys refuses other keys, naming the closest known one. Checks
that need code are the custom formats (`FORMAT_CHECKER`); checks across keys live with the code
that reads them (`deployment.py`, `federation/settings.py`).
"""

import difflib
import ipaddress
import sys
from typing import NamedTuple

# jsonschema imports rfc3987_syntax when it is installed (for the "iri" formats, which these
# settings never use), and that import builds a grammar for about 3 s in every process that reads
# the settings: the hub, each of its services, every CLI call. Unimportable, jsonschema skips it.
sys.modules.setdefault("rfc3987_syntax", None)

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from .catalog.datasets import ID_RE as DATASET_ID_RE
from .catalog.grants import MAX_DAYS
from .federation.settings import SITE_NAME_RE

DEMO_SIZES = ["small", "demo", "full"]  # the keys of dicom.demo.SIZES (a unit test keeps them equal)


def _section(description: str, properties: dict) -> dict:
    """A mapping of fixed keys: any other key is a mistake worth naming."""
    return {"type": "object", "title": "a mapping of settings", "description": description,
            "additionalProperties": False, "properties": properties}


def _doc(ref: str, description: str) -> dict:
    return {"$ref": f"#/$defs/{ref}", "description": description}


DEFS = {
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "title": "a port number from 1 to 65535"},
    "positive": {"type": "integer", "minimum": 1, "title": "a positive integer"},
    "seconds": {"type": "integer", "minimum": 1, "title": "a positive whole number of seconds"},
    "text": {"type": "string", "minLength": 1, "title": "a non-empty string"},
    "ip": {"type": "string", "format": "ip-address", "title": "an IP address such as 127.0.0.1"},
    "user": {"type": "string", "pattern": r"^\S+$", "title": "a user name (no spaces)"},
    "users": {"type": "array", "items": {"$ref": "#/$defs/user"}, "uniqueItems": True,
              "title": "a list of distinct user names, such as [alice, bob]"},
    "dataset_id": {"type": "string", "pattern": DATASET_ID_RE.pattern,
                   "title": "a dataset id: lower-case letters, digits and '-', such as lung-ct"},
    "profile": {
        "type": "object", "title": "a mapping with cpu and memory", "additionalProperties": False,
        "required": ["cpu", "memory"],
        "properties": {
            "display": {"type": "string", "title": "a string",
                        "description": "What the spawn form shows (default: the profile's name)."},
            "cpu": {"type": "number", "exclusiveMinimum": 0, "title": "a number of CPUs above 0, such as 2 or 0.5",
                    "description": "CPUs the sandbox may use (docker --cpus)."},
            "memory": {"type": ["string", "integer"], "format": "memory-size", "minimum": 1,
                       "title": "a memory size such as 512M or 4G, or a number of bytes",
                       "description": "Memory limit of the sandbox: bytes, or a number with K, M, G or T."},
            "gpus": {"type": "integer", "minimum": 0, "title": "a whole number of GPUs (0 or more)",
                     "description": "NVIDIA GPUs given to the sandbox; offered only on hosts that have GPUs."},
        },
    },
}

ROLES = _section("Who may do what beyond researching (every account is a researcher); see hub/roles.py.", {
    "operators": _doc("users", "Operators: users, servers' lifecycle, services; never inside a researcher's sandbox (not hub admins)."),
    "stewards": {
        "type": "object", "title": "a mapping of dataset id (or \"*\") to user names",
        "description": "Dataset id, or \"*\" for every dataset, -> the users who grant access to it, "
                       "review its exports and read its audit trail.",
        "propertyNames": {"anyOf": [{"const": "*"}, {"$ref": "#/$defs/dataset_id"}],
                          "title": "a dataset id such as lung-ct, or \"*\""},
        "additionalProperties": {"$ref": "#/$defs/users"},
    },
    "output_checkers": _doc("users", "Users who review airlock (export) requests."),
    "tool_reviewers": _doc("users", "Users who approve and retire AI tools (never one they added themselves)."),
    "clinicians": _doc("users", "Users who may open the dashboards shared with them."),
})

ACCESS = _section("Access requests: researchers ask in the portal, each dataset's stewards decide.", {
    "max_days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS,
                 "title": f"a whole number of days from 1 to {MAX_DAYS}",
                 "description": "The longest access a researcher may request; stewards may approve less."},
})

AIRLOCK = _section("The airlock: what may leave a sandbox, through release requests checked by people.", {
    "acro_python": {"type": "string", "minLength": 1, "title": "a file path",
                    "description": "Python of ACRO's own environment (ACRO pins an older pandas than the "
                                   "workbench), which checks tables made with ACRO."},
    "max_file_size": {"type": ["string", "integer"], "format": "memory-size", "minimum": 1,
                      "title": "a size such as 20M", "description": "Largest file a release may hold."},
    "max_files": {"type": "integer", "minimum": 1, "maximum": 1000, "title": "a whole number from 1 to 1000",
                  "description": "Most files one release request may hold."},
    "weights": {"enum": ["review", "refuse"], "title": "\"review\" or \"refuse\"",
                "description": "Model weights in a release: \"review\" lets output checkers decide (unless a "
                               "dataset's grant says no weights), \"refuse\" refuses them outright."},
})

HUB = _section("Where JupyterHub, its proxy and the hub services listen, and who logs in.", {
    "ip": _doc("ip", "Address the proxy listens on for browsers (0.0.0.0: every interface)."),
    "port": _doc("port", "Port the proxy listens on for browsers."),
    "api_ip": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/ip"}], "title": "an IP address, or null",
               "description": "Address of the hub API; null: the sandbox bridge's gateway, so sandboxes reach it."},
    "api_port": _doc("port", "Port of the hub API."),
    "proxy_api_port": _doc("port", "Port of the proxy's REST API, on 127.0.0.1."),
    "service_port": _doc("port", "Port of the workbench-federation hub service, on the hub API's address "
                                 "(federation.service_port overrides it)."),
    "portal_port": _doc("port", "Port of the workbench-portal hub service, on the hub API's address (browsers "
                                "reach it through the proxy, sandboxes directly for release requests)."),
    "authenticator": _doc("text", "Login: \"workbench\" (local accounts), \"oidc\" (an OpenID Connect provider, "
                                  "see oidc:) or another registered JupyterHub authenticator set up in "
                                  "jupyterhub_config.d/."),
})

_GROUPS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
           "title": "a list of distinct group names"}

OIDC = _section("Login through an OpenID Connect provider (hub.authenticator: oidc), with the workbench's roles "
                "from the provider's groups.", {
    "issuer": {"type": ["string", "null"], "pattern": "^https?://", "title": "an http(s) URL, or null",
               "description": "The provider's issuer URL; its /.well-known/openid-configuration gives the endpoints."},
    "client_id": {"type": ["string", "null"], "minLength": 1, "title": "a non-empty string, or null",
                  "description": "The workbench's client id at the provider."},
    "client_secret_file": {"type": ["string", "null"], "minLength": 1, "title": "a file path, or null",
                           "description": "File holding the client secret (readable by the hub only); read at "
                                          "each use, so a rotated secret needs no restart."},
    "client_secret_env": {"type": ["string", "null"], "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                          "title": "an environment variable name, or null",
                          "description": "Environment variable holding the client secret, if no file."},
    "callback_url": {"type": ["string", "null"], "pattern": "^https?://", "title": "an http(s) URL, or null",
                     "description": "The redirect URL registered at the provider (null: guessed from the request, "
                                    "<scheme>://<host>/hub/oauth_callback)."},
    "scopes": {"type": "array", "items": {"type": "string", "minLength": 1}, "contains": {"const": "openid"},
               "title": "a list of scopes that includes openid", "description": "The scopes requested at login."},
    "username_claim": _doc("text", "The userinfo claim that names the user in the hub."),
    "groups_claim": _doc("text", "The userinfo claim that lists the user's groups."),
    "login_groups": {**_GROUPS, "description": "The platform's groups: only their members log in, each as a "
                                               "researcher; one taken out of them has their servers stopped and "
                                               "their access ended."},
    "role_groups": _section("Provider groups per workbench role; people named in roles: keep their roles too.", {
        "operators": {**_GROUPS, "description": "Groups whose members are operators."},
        "stewards": {"type": "object", "title": "a mapping of dataset id (or \"*\") to group names",
                     "description": "Dataset id, or \"*\" for every dataset -> groups whose members steward it.",
                     "propertyNames": {"anyOf": [{"const": "*"}, {"$ref": "#/$defs/dataset_id"}],
                                       "title": "a dataset id such as lung-ct, or \"*\""},
                     "additionalProperties": _GROUPS},
        "output_checkers": {**_GROUPS, "description": "Groups whose members review airlock requests."},
        "tool_reviewers": {**_GROUPS, "description": "Groups whose members approve and retire AI tools."},
        "clinicians": {**_GROUPS, "description": "Groups whose members open the dashboards shared with them."},
    }),
    "login_service": _doc("text", "The provider's name on the login button (\"Sign in with ...\")."),
    "discovery_ttl": _doc("seconds", "Seconds the provider's discovery document is kept before it is fetched again."),
})

SANDBOX = _section("The researchers' single-user servers: image, network, limits and timeouts.", {
    "image": _doc("text", "Docker image of the single-user server."),
    "network": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                "title": "a docker network name: letters, digits, '_', '.' and '-'",
                "description": "Docker bridge network the sandboxes join (created by `workbench sandbox-network`)."},
    "subnet": {"type": "string", "format": "ipv4-network", "title": "an IPv4 network such as 172.29.248.0/24",
               "description": "Subnet of the sandbox network; its first address is the gateway where the hub API "
                              "listens."},
    "pids_limit": _doc("positive", "Most processes one sandbox may run."),
    "home_size": {"type": ["string", "integer", "null"], "format": "memory-size", "minimum": 1,
                  "title": "a size such as 10G, or null",
                  "description": "Most a user's home may hold: each home is then an ext4 image of that size "
                                 "(sparse, under /var/lib/workbench/homes) and writes past it fail. null: a plain "
                                 "docker volume, bounded only by the host's disk. An existing plain home is never "
                                 "replaced: its owner's server is refused until an operator moves it."},
    "home_volume": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.{}-]*$",
                    "title": "a docker volume name with {username}",
                    "description": "Docker volume of each user's home ({username}: the user's escaped name); the "
                                   "airlock reads ~/outbox from it when a release is filed."},
    "idle_timeout": _doc("seconds", "Seconds without activity before the idle culler stops a server."),
    "revocation_interval": _doc("seconds", "Seconds between grant checks; revoked access ends within two."),
    "start_timeout": _doc("seconds", "Seconds a server may take to start before the spawn fails."),
    "concurrent_spawns": {"type": "integer", "minimum": 0, "title": "a whole number, 0 for no limit",
                          "description": "Most servers starting at once; more are asked to try again shortly "
                                         "(HTTP 429). 0: no limit (every start then shares the CPUs, and a crowd "
                                         "runs past start_timeout)."},
    "default_profile": _doc("text", "The profile the spawn form selects first; must name one of `profiles`."),
    "profiles": {
        "type": "object", "minProperties": 1, "title": "a mapping of profile names to {display, cpu, memory, gpus}",
        "description": "Resource profiles offered in the spawn form: name -> {display, cpu, memory, gpus}.",
        "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                          "title": "a profile name: letters, digits, '_', '.' and '-'"},
        "additionalProperties": {"$ref": "#/$defs/profile"},
    },
})

DEMO = _section("The demo logins `make up` creates and the demo data it writes.", {
    "users": _doc("users", "Demo accounts to create (passwords in <state_dir>/demo-logins.json)."),
    "grants": {
        "type": "object", "title": "a mapping of user name to \"all\" or a list of dataset ids",
        "description": "User -> the demo datasets granted to them: \"all\" or a list of dataset ids.",
        "propertyNames": {"$ref": "#/$defs/user"},
        "additionalProperties": {
            "anyOf": [{"const": "all"}, {"type": "array", "items": {"$ref": "#/$defs/dataset_id"}}],
            "title": "\"all\" or a list of dataset ids such as [lung-ct]"},
    },
    "size": {"enum": DEMO_SIZES, "title": f"one of {', '.join(DEMO_SIZES)}",
             "description": "Size of the generated demo cohorts: small (fast), demo, or full (clinical)."},
})

FEDERATION = _section("Federated jobs on NVIDIA FLARE: where the server and service listen, which sites take "
                      "part, and the privacy rules new site policies start with.", {
    "workdir": {"type": ["string", "null"], "minLength": 1, "title": "a folder path, or null",
                "description": "Provisioned kits, logs and job results (null: <state_dir>/federation)."},
    "host": _doc("ip", "Where the FLARE server and the federation service listen."),
    "fl_port": _doc("port", "FLARE server port the sites connect to."),
    "admin_port": _doc("port", "FLARE admin API port (the service's Session API)."),
    "service_port": _doc("port", "Port of the workbench-federation hub service (default: hub.service_port)."),
    "sites": {"type": "array", "minItems": 1, "uniqueItems": True,
              "items": {"type": "string", "pattern": SITE_NAME_RE.pattern,
                        "title": "a site name: lower-case letters, digits and '-', such as site-1"},
              "title": "a non-empty list of distinct site names",
              "description": "The data-holding FLARE sites (clients) of the federation."},
    "min_count": _doc("positive", "Privacy: the minimum count written into new site policies (each site's "
                                  "policy file then decides), and the hub's own floor for every published cell."),
    "max_bins": _doc("positive", "Privacy: most histogram bins, written into new site policies."),
    "job_timeout": _doc("seconds", "Seconds before an unfinished job is ended, naming the sites that did not answer."),
    "task_timeout": _doc("seconds", "Seconds a site may take for one task (one round)."),
    "project": _doc("text", "FLARE project name used when provisioning the embedded federation."),
    "admin_user": _doc("text", "The service's FLARE admin identity; its kit is <workdir>/kits/<admin_user>."),
})

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "a mapping of deployment settings",
    "description": "The workbench's deployment settings; every key is optional (see deployment.DEFAULTS).",
    "type": "object",
    "additionalProperties": False,
    "$defs": DEFS,
    "properties": {
        "state_dir": {"type": "string", "minLength": 1, "title": "a folder path",
                      "description": "Where the catalog (SQLite), the hub's state, the demo data and the "
                                     "federation workspace live."},
        "database_url": {"type": ["string", "null"], "format": "sqlalchemy-url",
                         "title": "a SQLAlchemy URL such as postgresql+psycopg://user@host/db, or null",
                         "description": "The catalog database; null: SQLite file in state_dir."},
        "roles": ROLES,
        "access": ACCESS,
        "airlock": AIRLOCK,
        "audit_key_file": {"type": ["string", "null"], "minLength": 1, "title": "a file path, or null",
                           "description": "HMAC key of the audit trail, kept apart from the database "
                                          "(null: <state_dir>/audit.key)."},
        "hub": HUB,
        "oidc": OIDC,
        "sandbox": SANDBOX,
        "demo": DEMO,
        "federation": FEDERATION,
    },
}

# Custom formats: the checks a keyword cannot express. Each raises ValueError; its text is the reason.
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("ip-address", raises=ValueError)
def _ip_address(value) -> bool:
    return not isinstance(value, str) or bool(ipaddress.ip_address(value))


@FORMAT_CHECKER.checks("ipv4-network", raises=ValueError)
def _ipv4_network(value) -> bool:
    if isinstance(value, str) and ipaddress.IPv4Network(value).prefixlen > 30:
        raise ValueError("it leaves no addresses for the gateway and sandboxes; use /30 or wider")
    return True


@FORMAT_CHECKER.checks("memory-size")
def _memory_size(value) -> bool:
    from .deployment import parse_memory  # deployment.py imports this module

    try:
        return not isinstance(value, str) or parse_memory(value) > 0
    except ValueError:
        return False  # the title already says what a memory size looks like


@FORMAT_CHECKER.checks("sqlalchemy-url", raises=ValueError)
def _sqlalchemy_url(value) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return not isinstance(value, str) or bool(make_url(value))
    except ArgumentError as e:
        raise ValueError(str(e)) from None


VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FORMAT_CHECKER)


class Problem(NamedTuple):
    """One thing wrong in the settings: the key's path, what is wrong, and what to do.

    The hint may say {key} and {file}; the report fills them in."""

    path: tuple
    text: str
    hint: str = ""


def schema_problems(settings: dict) -> list[Problem]:
    """Every place where `settings` breaks the schema, worded for the person who edits the file."""
    return [problem for error in VALIDATOR.iter_errors(settings) for problem in _explain(error)]


def _explain(error: ValidationError) -> list[Problem]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema["properties"])
        return [unknown_key(path + (str(key),), known) for key in error.instance if key not in known]
    if error.validator == "required":
        fields = error.schema["properties"]
        return [Problem(path, f"lacks '{key}' ({expected(fields[key])})", f"add '{key}' under {{key}} in {{file}}")
                for key in error.validator_value if key not in error.instance]
    if "propertyNames" in error.relative_schema_path:  # the instance is a key of the mapping at `path`
        return [Problem(path + (str(error.instance),), f"is not a valid name here: use {expected(error.schema)}",
                        "rename {key} in {file}")]
    reason = f" ({error.cause})" if error.cause else ""
    return [Problem(path, f"must be {expected(error.schema)}, not {_show(error.instance)}{reason}",
                    "correct {key} in {file}")]


def unknown_key(path: tuple, known: list) -> Problem:
    """A key the schema does not know, with the closest known one when it looks like a typo."""
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return Problem(path, f"is not a setting (did you mean '{close[0]}'?)",
                       f"rename {{key}} to '{close[0]}' in {{file}}")
    return Problem(path, f"is not a setting (known here: {', '.join(known)})",
                   "remove {key} from {file}, or move it where it belongs")


def expected(schema: dict) -> str:
    """What a value must be, in words: the schema's title, or its type."""
    kinds = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
             "number": "a number", "boolean": "true or false", "null": "null"}
    kind = schema.get("type", "")
    return schema.get("title") or " or ".join(kinds.get(k, k) for k in ([kind] if isinstance(kind, str) else kind))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."

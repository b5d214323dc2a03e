"""The deployment settings' `federation:` section with its defaults filled in.

settings_schema.py checks and documents each key; this module fills in the defaults (the
dataclass's) and checks what needs them filled in: the three ports differ.
"""

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import WorkbenchError

SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a FLARE site (client) name, as federation.sites holds
# The embedded federation runs every site on this machine: one idle site took 90 MB and a statistics
# job's worker about as much again, so a hundred sites is already ~18 GB at once.
MAX_EMBEDDED_SITES = 100
SITES_FILE = "sites.json"  # <workdir>/sites.json: the sites `federation up --sites N` last chose


@dataclass(frozen=True)
class FederationSettings:
    """The `federation:` section with defaults filled in; what each key means is in settings_schema.py."""

    workdir: Path
    host: str = "127.0.0.1"
    fl_port: int = 8102
    admin_port: int = 8103
    service_port: int = 8104
    sites: tuple = ("site-1", "site-2", "site-3")
    min_count: int = 10
    max_bins: int = 64
    job_timeout: int = 900
    task_timeout: int = 300
    project: str = "workbench"
    admin_user: str = "service@workbench.local"

    @property
    def prod_dir(self) -> Path:
        """The provisioned startup kits (one folder per participant)."""
        return self.workdir / "kits"

    def kit(self, name: str) -> Path:
        return self.prod_dir / name

    @property
    def admin_kit(self) -> Path:
        return self.kit(self.admin_user)

    @property
    def results_dir(self) -> Path:
        return self.workdir / "results"

    @property
    def service_url(self) -> str:
        return f"http://{self.host}:{self.service_port}"

    @property
    def sites_file(self) -> Path:
        return self.workdir / SITES_FILE


def site_names(n: int) -> tuple[str, ...]:
    """site-1 .. site-N, the names the embedded federation's sites have always had.

    Raises:
        WorkbenchError: `n` below 1 or above MAX_EMBEDDED_SITES.
    """
    if not isinstance(n, int) or not 1 <= n <= MAX_EMBEDDED_SITES:
        raise WorkbenchError(f"--sites {n} is not a number of sites this machine can run: the embedded federation "
                             f"runs 1 to {MAX_EMBEDDED_SITES} sites, each a process of about 90 MB",
                             f"pass --sites between 1 and {MAX_EMBEDDED_SITES}; real hosts get kits from "
                             "'workbench federation provision'")
    return tuple(f"site-{i}" for i in range(1, n + 1))


def with_site_count(settings: FederationSettings, n: int, named_in_file: bool) -> FederationSettings:
    """`settings` with sites site-1..site-N, remembered in `sites_file` so that status, down and the
    federation service see the same sites.

    Raises:
        WorkbenchError: N is out of range, or the deployment file names its sites (`named_in_file`):
            two lists of sites would disagree.
    """
    sites = site_names(n)
    if named_in_file and sites != settings.sites:
        raise WorkbenchError(f"--sites {n} differs from the sites the deployment file names "
                             f"({', '.join(settings.sites)})",
                             "edit federation.sites in the deployment file, or remove it and use --sites")
    settings.workdir.mkdir(parents=True, exist_ok=True)
    partial = settings.sites_file.with_name(f".{SITES_FILE}.partial")
    partial.write_text(json.dumps({"sites": list(sites)}) + "\n")
    os.replace(partial, settings.sites_file)  # a running service re-reads it: never half-written
    return replace(settings, sites=sites)

PORTS = ("fl_port", "admin_port", "service_port")


def federation_settings(settings: dict) -> FederationSettings:
    """`settings['federation']` of the deployment settings over the defaults: workdir
    <state_dir>/federation, service_port hub.service_port, sites those `federation up --sites N`
    last chose (<workdir>/sites.json) unless the file names them.

    Expects deployment settings that `validate_settings` passed; it does not check them again.
    """
    values = dict(settings.get("federation") or {})
    values["workdir"] = Path(values.get("workdir") or Path(settings["state_dir"]) / "federation")
    hub_service_port = (settings.get("hub") or {}).get("service_port")
    if hub_service_port and "service_port" not in values:
        values["service_port"] = hub_service_port  # hub: already names the service's port
    if "sites" in values:
        values["sites"] = tuple(values["sites"])
    elif (values["workdir"] / SITES_FILE).is_file():
        values["sites"] = tuple(json.loads((values["workdir"] / SITES_FILE).read_text())["sites"])
    return FederationSettings(**values)


def federation_problems(settings: dict) -> list[tuple[tuple, str, str]]:
    """(key path, problem, hint) for each federation port that repeats another, defaults filled in.

    The hint's {key} and {file} are filled in by the report (deployment.report)."""
    federation, given = federation_settings(settings), settings.get("federation") or {}

    def name(key):  # where the port comes from: the section, the hub's service_port, or a default
        if key in given:
            return ("federation", key), ""
        return (("hub", "service_port"), "") if key == "service_port" else (("federation", key), " (its default)")

    first, problems = {}, []
    for key in PORTS:
        port = getattr(federation, key)
        if port in first:
            (path, _), (other, note) = name(key), name(first[port])
            problems.append((path, f"is {port}, the same port as '{'.'.join(other)}'{note}",
                             "give the FLARE server, its admin API and the federation service three different ports "
                             "({key} in {file})"))
        first.setdefault(port, key)
    return problems

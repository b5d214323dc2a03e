"""The deployment settings' `federation:` section with its defaults filled in.

settings_schema.py checks and documents each key; this module fills in the defaults (the
dataclass's) and checks what needs them filled in: the three ports differ.
"""

import re
from dataclasses import dataclass
from pathlib import Path

SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a FLARE site (client) name, as federation.sites holds


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

PORTS = ("fl_port", "admin_port", "service_port")


def federation_settings(settings: dict) -> FederationSettings:
    """`settings['federation']` of the deployment settings over the defaults: workdir
    <state_dir>/federation, service_port hub.service_port.

    Expects deployment settings that `validate_settings` passed; it does not check them again.
    """
    values = dict(settings.get("federation") or {})
    values["workdir"] = Path(values.get("workdir") or Path(settings["state_dir"]) / "federation")
    hub_service_port = (settings.get("hub") or {}).get("service_port")
    if hub_service_port and "service_port" not in values:
        values["service_port"] = hub_service_port  # hub: already names the service's port
    if "sites" in values:
        values["sites"] = tuple(values["sites"])
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

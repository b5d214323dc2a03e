"""The site file's `federation:` section, validated, with every default spelled out.

```yaml
federation:
  workdir: /var/lib/workbench/state/federation   # provisioned kits, logs, job results
  host: 127.0.0.1          # where the FLARE server and the service listen
  fl_port: 8102            # FLARE server <-> sites
  admin_port: 8103         # FLARE admin API (the service's Session API)
  service_port: 8104       # the workbench-federation hub service (default: hub.service_port)
  sites: [site-1, site-2, site-3]
  min_count: 10            # privacy: smaller counts never leave a site
  noise: 0.02              # privacy: relative noise on released counts and sums
  max_bins: 64             # privacy: most histogram bins a site releases
  job_timeout: 900         # seconds before a job is ended, sites that did not answer named
  task_timeout: 300        # seconds a site may take for one task (one round)
```
"""

import ipaddress
import re
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import WorkbenchError

SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class FederationSettings:
    workdir: Path
    host: str = "127.0.0.1"
    fl_port: int = 8102
    admin_port: int = 8103
    service_port: int = 8104
    sites: tuple = ("site-1", "site-2", "site-3")
    min_count: int = 10
    noise: float = 0.02
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

    def privacy(self) -> dict:
        return {"min_count": self.min_count, "noise": self.noise, "max_bins": self.max_bins}


def _bad(key: str, problem: str) -> WorkbenchError:
    return WorkbenchError(f"site file: 'federation.{key}' {problem}", f"fix 'federation.{key}' in the site file")


def _positive_int(key, value, upper=None):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or (upper and value > upper):
        raise _bad(key, f"must be a positive integer{f' up to {upper}' if upper else ''}, not {value!r}")
    return value


def federation_settings(site: dict) -> FederationSettings:
    """Validate `site['federation']` and return it merged over the defaults.

    Raises:
        WorkbenchError: naming the first key that is unknown or wrong, with its value.
    """
    raw = dict(site.get("federation") or {})
    known = {f.name for f in fields(FederationSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _bad(unknown[0], f"is not a federation setting (known: {', '.join(sorted(known))})")
    values = {"workdir": Path(raw.pop("workdir", None) or Path(site["state_dir"]) / "federation")}
    hub_service_port = (site.get("hub") or {}).get("service_port")
    if hub_service_port and "service_port" not in raw:
        raw["service_port"] = hub_service_port  # the hub's site section already names the service's port
    for key in ("fl_port", "admin_port", "service_port"):
        if key in raw:
            values[key] = _positive_int(key, raw.pop(key), 65535)
    for key in ("min_count", "max_bins", "job_timeout", "task_timeout"):
        if key in raw:
            values[key] = _positive_int(key, raw.pop(key))
    if "noise" in raw:
        noise = raw.pop("noise")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
            raise _bad("noise", f"must be a fraction between 0 and 1 (0.02 = 2 %), not {noise!r}")
        values["noise"] = float(noise)
    if "host" in raw:
        host = raw.pop("host")
        try:
            ipaddress.ip_address(host)
        except (ValueError, TypeError):
            raise _bad("host", f"must be an IP address such as 127.0.0.1, not {host!r}") from None
        values["host"] = host
    if "sites" in raw:
        sites = raw.pop("sites")
        if not isinstance(sites, list) or not sites:
            raise _bad("sites", f"must be a list of site names, not {sites!r}")
        for name in sites:
            if not isinstance(name, str) or not SITE_NAME_RE.match(name):
                raise _bad("sites", f"holds {name!r}: use lower-case letters, digits and '-', e.g. site-1")
        if len(set(sites)) != len(sites):
            raise _bad("sites", f"names a site twice: {sites}")
        values["sites"] = tuple(sites)
    for key in ("project", "admin_user"):
        if key in raw:
            value = raw.pop(key)
            if not isinstance(value, str) or not value:
                raise _bad(key, f"must be a non-empty string, not {value!r}")
            values[key] = value
    ports = [values.get(k, getattr(FederationSettings, k)) for k in ("fl_port", "admin_port", "service_port")]
    if len(set(ports)) != 3:
        raise _bad("fl_port", f"fl_port, admin_port and service_port must differ, not {ports}")
    return FederationSettings(**values)

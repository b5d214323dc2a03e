"""The portal's pages in the hub's look: our templates extend the hub's own `page.html`.

`page.html` expects the namespace the hub's handlers give it (base_url, prefix, user,
static_url, logout_url, ...); `hub_namespace` builds the same from the service's side, with
links and static files pointing at the hub (the hub serves /hub/static/, the service does not).
"""

import json
from pathlib import Path
from types import SimpleNamespace

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.utils import url_path_join

TEMPLATES = Path(__file__).parent / "templates"
HUB_TEMPLATES = Path(DATA_FILES_PATH) / "templates"


def page_environment() -> Environment:
    """Our templates first, then the hub's (for `page.html` and its macros)."""
    loader = ChoiceLoader([FileSystemLoader(TEMPLATES), FileSystemLoader(HUB_TEMPLATES)])
    return Environment(loader=loader, autoescape=select_autoescape(["html"]), trim_blocks=True,
                       lstrip_blocks=True)


def hub_namespace(hub_prefix: str, user: dict | None) -> dict:
    """What the hub's `page.html` reads, for `user` (the hub's user model, or None).

    Args:
        hub_prefix: the hub's own prefix, e.g. /hub/ (HubAuth.hub_prefix).
    """
    base = hub_prefix.rstrip("/").rpartition("/")[0] + "/"  # /hub/ -> /, /jh/hub/ -> /jh/
    person = None
    if user:
        person = SimpleNamespace(name=user["name"], json_escaped_name=json.dumps(user["name"])[1:-1])

    def static_url(path: str, include_version: bool = True) -> str:
        return url_path_join(hub_prefix, "static", path)

    return {
        "base_url": hub_prefix, "prefix": base, "user": person, "static_url": static_url,
        "login_url": url_path_join(hub_prefix, "login"), "logout_url": url_path_join(hub_prefix, "logout"),
        "parsed_scopes": set(user.get("scopes", [])) if user else set(),
        "no_spawner_check": True,  # the portal has no spawner to ask about an options form
    }

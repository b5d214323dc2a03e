"""The hub's REST API as training sessions use it, with the `workbench-sessions` service's token.

The hub runs `workbench-sessions` as an external service (no process) whose token is a file in
the state directory, readable by root only: whoever runs `workbench session` on the host is
already trusted with the catalog beside it. Its role (hub/configurer.py) lets it make hub users
and groups, start, stop and remove servers, and share a learner's session server with the
session's instructors (JupyterHub 5 shares: `access:servers` on that one server, nothing else).
"""

import secrets
import time
from pathlib import Path
from urllib.parse import quote

import requests

from ..errors import WorkbenchError
from ..private_state import ensure_state_dir

SERVICE_NAME = "workbench-sessions"
TOKEN_FILE = "sessions-service.token"
SCOPES = ["admin:users", "admin:servers", "admin:groups", "shares", "read:shares", "list:users", "read:users"]


def ensure_token(settings: dict) -> str:
    """The service's token, made at the hub's first configuration (mode 0600, root's)."""
    path = ensure_state_dir(settings) / TOKEN_FILE
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


class SessionHub:
    """Calls to the hub API; every failure raises WorkbenchError naming the call."""

    def __init__(self, api_url: str, token: str):
        self.url = api_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    @classmethod
    def from_settings(cls, settings: dict) -> "SessionHub":
        from ..hub.configurer import hub_api_ip

        path = Path(settings["state_dir"]) / TOKEN_FILE
        if not path.is_file():
            raise WorkbenchError(f"no hub token for training sessions at {path}",
                                 "start the hub once with these settings ('make up'); it makes the token")
        return cls(f"http://{hub_api_ip(settings)}:{settings['hub']['api_port']}/hub/api", path.read_text().strip())

    def _call(self, method: str, path: str, ok=(200, 201, 202, 204), **kwargs) -> requests.Response:
        try:
            r = self.http.request(method, self.url + path, timeout=60, **kwargs)
        except requests.ConnectionError:
            raise WorkbenchError(f"the hub API at {self.url} does not answer", "start the hub ('make up')") from None
        if r.status_code not in ok:
            raise WorkbenchError(f"the hub refused {method} {path}: {r.status_code} {_message(r)}",
                                 "see the hub's log")
        return r

    def ensure_user(self, name: str) -> None:
        """The hub learns of users at their first login; a learner pre-spawned before that is made."""
        self._call("POST", f"/users/{quote(name)}", ok=(201, 409))

    def remove_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{quote(name)}", ok=(204, 404))

    def user(self, name: str) -> dict | None:
        r = self._call("GET", f"/users/{quote(name)}", ok=(200, 404))
        return r.json() if r.status_code == 200 else None

    def ensure_group(self, group: str, members: list[str]) -> None:
        """The group exists and holds `members` (and nobody else)."""
        r = self._call("GET", f"/groups/{quote(group)}", ok=(200, 404))
        if r.status_code == 404:
            self._call("POST", f"/groups/{quote(group)}", ok=(201, 409))
        current = set(r.json().get("users", [])) if r.status_code == 200 else set()
        if set(members) - current:
            self._call("POST", f"/groups/{quote(group)}/users", json={"users": sorted(set(members) - current)})
        if current - set(members):
            self._call("DELETE", f"/groups/{quote(group)}/users", json={"users": sorted(current - set(members))})

    def remove_group(self, group: str) -> None:
        self._call("DELETE", f"/groups/{quote(group)}", ok=(204, 404))

    def server(self, user: str, server_name: str) -> dict | None:
        """The server's model, or None when the hub has no running or pending server of that name."""
        model = self.user(user)
        return None if model is None else model.get("servers", {}).get(server_name)

    def start_server(self, user: str, server_name: str) -> None:
        # 400: already running or pending, which is what a pre-spawn wants.
        r = self._call("POST", f"/users/{quote(user)}/servers/{quote(server_name)}", json={}, ok=(201, 202, 400))
        if r.status_code == 400 and "already" not in r.text:
            raise WorkbenchError(f"the hub refused to start {user}/{server_name}: {_message(r)}", "see the hub's log")

    def stop_server(self, user: str, server_name: str, remove: bool = False) -> None:
        """Stop it; `remove` also drops the hub's record of it, and with it the server's shares."""
        self._call("DELETE", f"/users/{quote(user)}/servers/{quote(server_name)}", json={"remove": remove},
                   ok=(202, 204, 400, 404))

    def wait_stopped(self, user: str, server_name: str, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(user, server_name) is None:
                return True
            time.sleep(1)
        return False

    def share(self, owner: str, server_name: str, user: str, scopes: list[str] | None = None) -> None:
        """`user` may open `owner`'s server `server_name`: `scopes` filtered to that server (default
        `access:servers` only). A share goes to a user, not a group: JupyterHub 6.1 gives a user's
        tokens, and so their OAuth logins into a server, the scopes of shares with the user only."""
        self._call("POST", f"/shares/{quote(owner)}/{quote(server_name)}",
                   json={"user": user, **({"scopes": scopes} if scopes else {})})

    def group_members(self, group: str) -> list[str]:
        r = self._call("GET", f"/groups/{quote(group)}", ok=(200, 404))
        return sorted(r.json().get("users", [])) if r.status_code == 200 else []

    def shares(self, owner: str, server_name: str) -> list[str] | None:
        """The users the server is shared with; None when the hub has no such server."""
        r = self._call("GET", f"/shares/{quote(owner)}/{quote(server_name)}", ok=(200, 404))
        return None if r.status_code == 404 else [s["user"]["name"] for s in r.json()["items"] if s.get("user")]

    def unshare(self, owner: str, server_name: str, user: str) -> None:
        self._call("PATCH", f"/shares/{quote(owner)}/{quote(server_name)}", json={"user": user})


def _message(r: requests.Response) -> str:
    try:
        return r.json().get("message", r.text[:200])
    except ValueError:
        return r.text[:200]

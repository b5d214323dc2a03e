"""Calls from a sandbox to the portal's API, with the server's own hub token ($JUPYTERHUB_API_TOKEN)."""

import os

import requests

URL_ENV = "WORKBENCH_PORTAL_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"


class PortalError(Exception):
    """The portal refused or failed the request: `status` (HTTP; 0: not sent), `fields` (what was wrong)."""

    def __init__(self, status: int, message: str, hint: str | None = None, fields: dict | None = None):
        self.status, self.message, self.hint, self.fields = status, message, hint, fields or {}
        super().__init__(f"{message} (HTTP {status})" + (f"\n  what to do: {hint}" if hint else ""))


def call(method: str, path: str, body: dict | None = None, url: str | None = None, token: str | None = None,
         error=PortalError, timeout: float = 300) -> dict:
    """The portal's JSON answer to `method` `path` (under its URL); raises `error` when refused."""
    url = url or os.environ.get(URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not url or not token:
        raise error(0, "no portal URL or hub token", f"run this in your workbench server (${URL_ENV}, ${TOKEN_ENV})")
    try:
        r = requests.request(method, url.rstrip("/") + "/" + path.lstrip("/"), json=body, timeout=timeout,
                             headers={"Authorization": f"token {token}"})
    except requests.RequestException as e:
        raise error(0, f"cannot reach the portal at {url}: {e}", "check that the hub's portal runs") from None
    if r.status_code >= 400:
        try:
            answer = r.json()
        except ValueError:
            answer = {"error": r.text or r.reason}
        raise error(r.status_code, answer.get("error") or r.reason, answer.get("hint"), answer.get("fields"))
    return r.json()

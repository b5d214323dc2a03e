"""Calling the workbench-portal of a test hub as its users do, for the portal's test modules."""

import requests

from imaging_workbench.catalog import datasets
from imaging_workbench.portal.base import ACCESS_SCOPE, SERVICE_NAME

from ..waiting import wait_for


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


def portal_caller(hub, people, timeout: float = 30):
    """Once the hub has started the portal: call(user, method, path, **requests' kwargs), sending
    `user`'s own hub token (scope access:services!service=workbench-portal) through the hub's
    proxy; `call.base` is the portal's URL."""
    base = f"{hub.url}/services/{SERVICE_NAME}/"
    wait_for(lambda: _answers(base + "api/health"), 60, what=f"the hub to start {SERVICE_NAME}")
    for name in people:
        hub.api("POST", f"/users/{name}")  # the hub learns of users at their first login; 409 if known
    tokens = {name: hub.user_token(name, [ACCESS_SCOPE]) for name in people}

    def call(user, method, path, **kwargs):
        return requests.request(method, base + path, headers={"Authorization": f"token {tokens[user]}"},
                                timeout=timeout, **kwargs)

    call.base = base
    return call


def register(ctx, root, fields: dict[str, dict]) -> dict[str, str]:
    """Register each dataset id of `fields` (its metadata) over an empty folder under `root`;
    id -> the folder's resolved path. The catalogue needs catalog rows, not images."""
    folders = {}
    with ctx.session() as s:
        for dataset_id, metadata in fields.items():
            folder = root / "data" / dataset_id
            folder.mkdir(parents=True)
            datasets.add_dataset(s, "steward", dataset_id, folder, **metadata)
            folders[dataset_id] = str(folder.resolve())
    return folders

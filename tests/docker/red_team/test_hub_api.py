"""Red team 1: the hub API beyond the server token's own scopes (the twin: a widened token)."""

import json

import pytest
import requests

from ..sandboxes import python_in
from .tools import Attempt, judge

pytestmark = pytest.mark.docker

# ---- 1. the hub API beyond the token's scopes

API_PROBE = r'''
import json, os, sys, urllib.error, urllib.request
url, token = os.environ["JUPYTERHUB_API_URL"], os.environ.get("RED_TOKEN") or os.environ["JUPYTERHUB_API_TOKEN"]
out = []
for method, path, body in json.loads(sys.argv[1]):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            out.append([r.status, r.read().decode()[:3000]])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.read().decode()[:300]])
print(json.dumps(out))
'''

# (what is tried, the sandbox's call, the twin's call when it differs). Where the same call by the
# twin would start or stop a server, the twin makes it where it changes nothing (bob's server is
# already running, carol has none): getting past the hub's scope check is getting through.
HUB_ATTEMPTS = [
    ("hub API: list every user", ("GET", "/users", None), None),
    ("hub API: read another user", ("GET", "/users/bob", None), None),
    ("hub API: start another user's server", ("POST", "/users/carol/server", {}), ("POST", "/users/bob/server", {})),
    ("hub API: stop another user's server", ("DELETE", "/users/bob/server", None),
     ("DELETE", "/users/carol/server", None)),
    ("hub API: read another user's tokens", ("GET", "/users/bob/tokens", None), None),
    ("hub API: mint a token for another user's server",
     ("POST", "/users/bob/tokens", {"scopes": ["access:servers!server=bob/"], "note": "red team"}), None),
    ("hub API: mint oneself a token", ("POST", "/users/alice/tokens", {"note": "red team"}), None),
    ("hub API: create a user", ("POST", "/users/mallory", None), None),
    ("hub API: make oneself an admin", ("PATCH", "/users/alice", {"admin": True}),
     ("PATCH", "/users/carol", {"admin": False})),
    ("hub API: list groups", ("GET", "/groups", None), None),
    ("hub API: create a group", ("POST", "/groups/red-team-probe", None), None),
    ("hub API: join a group", ("POST", "/groups/red-team-probe/users", {"users": ["alice"]}), None),
    ("hub API: read the proxy's routes", ("GET", "/proxy", None), None),
]
DENIED = (401, 403, 404)


def call_hub_from(sandbox, calls, token: str | None = None) -> list:
    code, out = python_in(sandbox, API_PROBE, json.dumps(calls), environment={"RED_TOKEN": token} if token else None)
    assert code == 0, out
    return json.loads(out)


def opens_bobs_server(hub, answer: list) -> bool:
    """A token the twin minted opens bob's server through the proxy, not only exists."""
    if answer[0] != 201:
        return False
    r = requests.get(f"{hub.url}/user/bob/api/status", timeout=30,
                     headers={"Authorization": f"token {json.loads(answer[1])['token']}"})
    return r.status_code == 200


def test_the_hub_api_refuses_all_beyond_the_servers_own_scopes(red_hub, alice):
    hub = red_hub
    by_twin = call_hub_from(alice, [twin or real for _, real, twin in HUB_ATTEMPTS], hub.widened_token)
    answers = call_hub_from(alice, [real for _, real, _ in HUB_ATTEMPTS])
    attempts = []
    for (name, _, _), answer, twin_answer in zip(HUB_ATTEMPTS, answers, by_twin):
        through = twin_answer[0] not in DENIED
        if name == "hub API: mint a token for another user's server":
            through = opens_bobs_server(hub, twin_answer)
        attempts.append(Attempt(name, "a token with the scopes the sandbox's token lacks", through,
                                answer[0] in DENIED, f"sandbox {answer}, twin {twin_answer[0]}"))
    judge(attempts)
    assert not hub.api("GET", "/users/alice").json()["admin"]

"""Many users at once, each as a browser would: the journey the load test (tests/docker/test_load.py)
and the load benchmark (benchmarks/load.py) run per user, on its own thread with its own HTTP session.

- `visit`: log in through the login page, start the server from the spawn form, follow the
  spawn's progress event stream until it is ready, then reach the server through the proxy and the
  federation service from inside the sandbox. A start that fails is reported with its reason and
  tried once more; a 429 from the hub's concurrent spawn limit is not a failure: the visit waits
  the Retry-After the hub names and asks again, until its deadline.
- `Visit`: what one journey saw (times, attempts, throttles, errors with reasons).
- `ApiProbe`: hub API latency, sampled every 0.5 s on a thread of its own.
"""

import json
import re
import statistics
import threading
import time
from dataclasses import dataclass, field

import requests

from ..hubtools import log_in

XSRF_TOKEN = re.compile(r'xsrf_token: "([^"]+)"')  # every hub page gives its scripts the token
# What a sandbox runs to call the federation service, with the token the hub gave its server.
FEDERATION_CALL = """
import json, os, urllib.request
request = urllib.request.Request(os.environ["WORKBENCH_FEDERATION_URL"].rstrip("/") + "/api/datasets",
                                 headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]})
print(json.dumps([d["id"] for d in json.load(urllib.request.urlopen(request, timeout=30))]))
"""


class SpawnFailed(Exception):
    """A start the hub gave up on; the message is the hub's reason."""


@dataclass
class Visit:
    user: str
    login_s: float | None = None
    ready_s: float | None = None      # from asking for the server to ready, over all attempts
    attempts: int = 0
    throttled: int = 0                # 429s from the concurrent spawn limit (waited out, not errors)
    failures: list = field(default_factory=list)  # reasons of starts that failed (each retried once)
    error: str | None = None          # what ended the journey short of its end
    server_status: dict | None = None
    federation_datasets: list | None = None
    http: requests.Session | None = field(default=None, repr=False)  # the user's logged-in session

    @property
    def ok(self) -> bool:
        return self.error is None


def _xsrf(page: requests.Response) -> str:
    found = XSRF_TOKEN.search(page.text)
    if not found:
        raise SpawnFailed(f"no XSRF token on {page.url} (HTTP {page.status_code})")
    return found.group(1)


def ask_for_server(http: requests.Session, hub_url: str, profile: str, deadline: float, visit: Visit) -> str:
    """Submit the spawn form; on 429 wait the hub's Retry-After and submit again. Returns the form's
    XSRF token (the progress stream wants it)."""
    while True:
        form = http.get(f"{hub_url}/hub/spawn", timeout=60)
        xsrf = _xsrf(form)
        r = http.post(f"{hub_url}/hub/spawn", data={"profile": profile, "_xsrf": xsrf}, allow_redirects=False,
                      timeout=120)
        if r.status_code == 429:
            visit.throttled += 1
            wait = float(r.headers.get("Retry-After", 5))
            if time.monotonic() + wait > deadline:
                raise SpawnFailed(f"still throttled by the hub's spawn limit at the deadline: {r.text[:200]}")
            time.sleep(wait)
            continue
        if r.status_code != 302:
            raise SpawnFailed(f"the spawn form answered HTTP {r.status_code}: {r.text[:300]}")
        return xsrf


def wait_ready(http: requests.Session, hub_url: str, user: str, xsrf: str, deadline: float) -> None:
    """Follow the spawn's progress event stream to its end: ready, or SpawnFailed with the hub's message."""
    url = f"{hub_url}/hub/api/users/{user}/server/progress"
    with http.get(url, params={"_xsrf": xsrf}, stream=True, timeout=(30, max(deadline - time.monotonic(), 1))) as r:
        if r.status_code != 200:
            raise SpawnFailed(f"the progress stream answered HTTP {r.status_code}: {r.text[:300]}")
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line[len("data:"):])
            if event.get("ready"):
                return
            if event.get("failed"):
                message = event.get("message", "Spawn failed").rstrip(": ")
                # A start the hub's start_timeout cut short fails with an empty message.
                raise SpawnFailed(message if message != "Spawn failed" else
                                  "Spawn failed without a message from the hub (as when its start_timeout passes)")
            if time.monotonic() > deadline:
                break
    raise SpawnFailed("the progress stream ended before the server was ready")


def wait_stopped(hub, user: str, deadline: float) -> None:
    """After a failed start the hub stops what was made; wait for that before asking again."""
    while "" in hub.api("GET", f"/users/{user}").json()["servers"]:
        if time.monotonic() > deadline:
            raise SpawnFailed("the failed server was not stopped by the deadline")
        time.sleep(0.5)


def visit(hub, user: str, password: str, profile: str, docker, container: str, timeout: float = 300,
          may_spawn=lambda: True) -> Visit:
    """One user's journey, bounded by `timeout` seconds; never raises (errors are in the Visit).

    `may_spawn()` is asked before each start (the benchmark's memory floor): anything but True is
    the reason the visit ends unstarted ('not started: <reason>')."""
    seen, deadline = Visit(user), time.monotonic() + timeout
    try:
        start = time.monotonic()
        http, response = log_in(hub.url, user, password)
        if response.status_code != 302:
            raise SpawnFailed(f"login answered HTTP {response.status_code}")
        seen.login_s, seen.http = time.monotonic() - start, http
        start = time.monotonic()
        while True:
            allowed = may_spawn()
            if allowed is not True:
                seen.error = f"not started: {allowed}"
                return seen
            seen.attempts += 1
            try:
                wait_ready(http, hub.url, user, ask_for_server(http, hub.url, profile, deadline, seen), deadline)
                break
            except (SpawnFailed, requests.RequestException) as e:
                seen.failures.append(str(e))
                if seen.attempts >= 2:
                    raise
                wait_stopped(hub, user, deadline)
        seen.ready_s = time.monotonic() - start
        # The server's page first, as a browser opens it: that runs the OAuth handshake with the hub and
        # gives the session the server's cookie, which its API then accepts.
        page = http.get(f"{hub.url}/user/{user}/", timeout=60)
        if page.status_code != 200:
            raise SpawnFailed(f"GET /user/{user}/ answered HTTP {page.status_code} (at {page.url})")
        status = http.get(f"{hub.url}/user/{user}/api/status", timeout=60)
        if status.status_code != 200:
            raise SpawnFailed(f"GET /user/{user}/api/status answered HTTP {status.status_code}")
        seen.server_status = status.json()
        code, output = docker.containers.get(container).exec_run(
            ["timeout", "60", "python3", "-c", FEDERATION_CALL], user="1000")
        if code != 0:
            raise SpawnFailed(f"the federation call from the sandbox failed ({code}): {output.decode()[-300:]}")
        seen.federation_datasets = json.loads(output.decode().strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 - every error is reported with its reason, none is lost
        seen.error = f"{type(e).__name__}: {e}"
    return seen


class ApiProbe:
    """GET /hub/api/users/<user> with the admin token every `interval` seconds, on a thread; `mark()`
    labels the samples from then on (e.g. idle, then load)."""

    def __init__(self, hub, user: str, interval: float = 0.5):
        self.hub, self.user, self.interval = hub, user, interval
        self.samples: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self._label, self._stop = "idle", threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-probe", daemon=True)

    def start(self, label: str = "idle") -> "ApiProbe":
        self._label = label
        self._thread.start()
        return self

    def mark(self, label: str) -> None:
        self._label = label

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                r = self.hub.api("GET", f"/users/{self.user}")
                r.raise_for_status()
                self.samples.setdefault(self._label, []).append(time.monotonic() - start)
            except requests.RequestException as e:
                self.errors.append(f"{self._label}: {e}")
            self._stop.wait(max(self.interval - (time.monotonic() - start), 0.05))


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), inclusive method; None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]

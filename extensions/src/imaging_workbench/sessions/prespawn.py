"""Pre-spawn: every learner's `session-NAME` server started before the session, a few at a time.

First the hub users of whoever never logged in, and the session's hub group brought to the
roster; then for each learner: the server started, its progress followed to ready or failed,
and the server shared with each instructor, so an instructor can open exactly that server.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from urllib.parse import quote

from tqdm import tqdm

from ..catalog import training_sessions
from ..errors import WorkbenchError
from ..hub.roles import session_group
from .hub_api import SessionHub


def follow_spawn(hub: SessionHub, user: str, server_name: str, timeout: float) -> str | None:
    """Wait for the spawn through the hub's progress events; None when ready, else why it failed."""
    deadline = time.monotonic() + timeout
    path = f"/users/{quote(user)}/servers/{quote(server_name)}/progress"
    try:
        r = hub.http.get(hub.url + path, stream=True, timeout=(30, timeout))
    except Exception as e:  # noqa: BLE001 - one learner's failure is reported, the others go on
        return f"the hub's progress stream failed: {e}"
    if r.status_code != 200:
        return f"the hub's progress stream answered {r.status_code}"
    with r:
        for line in r.iter_lines(decode_unicode=True):
            if time.monotonic() > deadline:
                return f"not ready within {timeout:.0f} s"
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line[len("data:"):])
            if event.get("ready"):
                return None
            if event.get("failed"):
                return event.get("message") or "the spawn failed"
    model = hub.server(user, server_name)
    return None if model and model.get("ready") else "the spawn ended without the server being ready"


def prespawn_one(hub: SessionHub, user: str, server_name: str, instructors: list[str], timeout: float) -> str | None:
    try:
        hub.start_server(user, server_name)
        error = follow_spawn(hub, user, server_name, timeout)
        if error is None:
            for instructor in instructors:
                hub.share(user, server_name, instructor)
        return error
    except WorkbenchError as e:
        return e.message


def prespawn(hub: SessionHub, session_name: str, learners: list[str], instructors: list[str],
             concurrency: int, timeout: float = 300, progress: bool = True) -> dict[str, str | None]:
    """Start every learner's server, `concurrency` at a time; learner -> None (ready) or the error."""
    if concurrency < 1:
        raise WorkbenchError(f"--concurrency must be at least 1, not {concurrency}", "give how many spawns at once")
    server_name = training_sessions.server_name(session_name)
    for user in [*instructors, *learners]:  # a share and a group name users the hub must know
        hub.ensure_user(user)
    hub.ensure_group(session_group(session_name), learners)
    errors = {}
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(learners), desc=f"pre-spawn {session_name}", unit="server", disable=not progress) as bar:
        futures = {pool.submit(prespawn_one, hub, user, server_name, instructors, timeout): user for user in learners}
        for future in as_completed(futures):
            errors[futures[future]] = future.result()
            bar.update()
            bar.set_postfix(failed=sum(e is not None for e in errors.values()))
    return errors

"""The end of a session's work: `collect` (a read-only snapshot of each learner's session folder
for the instructors, any number of times) and `end` (servers stopped, each learner's work
archived to one file, the session's grants ended, temporary accounts removed; each step audited).

Both write under `<state_dir>/sessions/NAME/` on the host, which only root reads; instructors get
the files through the portal's Teaching page (portal/session_pages.py).
"""

from pathlib import Path

from ..catalog import audit, training_sessions
from ..clock import utcnow
from ..errors import WorkbenchError
from ..hub.network import docker_client
from ..hub.roles import session_group
from ..stack import STACK_LABEL, stack_id
from . import homes
from .hub_api import SessionHub

COLLECTED, ARCHIVE = "collected", "archive"


def session_folder(settings: dict, name: str) -> Path:
    return Path(settings["state_dir"]) / "sessions" / name


def _volumes(settings: dict, name: str, learners: list[str]) -> dict[str, str]:
    server = training_sessions.server_name(name)
    return {u: homes.session_home_volume(settings["sandbox"]["home_volume"], u, server) for u in learners}


def _labels(settings: dict) -> dict:
    return {STACK_LABEL: stack_id(settings)}


def collect(ctx, name: str) -> tuple[Path, dict]:
    """Snapshot each learner's ~/sessions/NAME into sessions/NAME/collected/<UTC time>/<user>.tar.gz."""
    with ctx.session() as s:
        training = training_sessions.live_session(s, name)
        learners = [m.user for m in training_sessions.learners(training)]
    out = session_folder(ctx.settings, name) / COLLECTED / utcnow().strftime("%Y%m%dT%H%M%SZ")
    if out.exists():
        raise WorkbenchError(f"a collection of '{name}' was made this second ({out})", "run it again")
    packed = homes.pack_homes(docker_client(), ctx.settings["sandbox"]["image"], _volumes(ctx.settings, name, learners),
                              f"sessions/{name}", out, _labels(ctx.settings))
    with ctx.session() as s:
        audit.record(s, ctx.actor, "session.collect", name, folder=out.name,
                     collected=sorted(u for u, f in packed.items() if f), nothing=sorted(u for u, f in packed.items() if not f))
    return out, packed


def end(ctx, name: str, hub: SessionHub, progress: bool = True) -> dict:
    """End the session; see the module doc. Stops first, so nothing changes while it is archived;
    a step that fails stops the end before the catalog marks it ended, and running it again
    takes it up where it stopped."""
    from tqdm import tqdm

    with ctx.session() as s:
        training = training_sessions.live_session(s, name)
        members = training_sessions.learners(training)
        learners = [m.user for m in members]
        temporary = [m.user for m in members if m.temporary]
    server = training_sessions.server_name(name)
    for user in tqdm(learners, desc=f"stop {name}", unit="server", disable=not progress):
        hub.stop_server(user, server, remove=True)  # the hub forgets the server, and its shares with it
    still = [u for u in learners if not hub.wait_stopped(u, server)]
    if still:
        raise WorkbenchError(f"the session servers of {', '.join(still)} did not stop", "see the hub's log, then run "
                             f"'workbench session end {name}' again")
    with ctx.session() as s:
        audit.record(s, ctx.actor, "session.stop", name, servers=learners)
    volumes = _volumes(ctx.settings, name, learners)
    archive = session_folder(ctx.settings, name) / ARCHIVE
    packed = homes.pack_homes(docker_client(), ctx.settings["sandbox"]["image"], volumes, "", archive,
                              _labels(ctx.settings))
    with ctx.session() as s:
        audit.record(s, ctx.actor, "session.archive", name, folder=str(archive),
                     archived=sorted(u for u, f in packed.items() if f))
    homes.remove_volumes(docker_client(), volumes.values())
    with ctx.session() as s:
        closed = training_sessions.close_session(s, ctx.actor, name)
    for user in temporary:
        hub.remove_user(user)
    hub.remove_group(session_group(name))
    return {**closed, "stopped": learners, "archived": {u: str(f) for u, f in packed.items() if f},
            "hub_users_removed": temporary}

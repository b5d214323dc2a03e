"""The instructors' Teaching page and its API: the training sessions they instruct, with each
learner, a link to their session server (shared with the instructors at pre-spawn), for
temporary accounts the one-time password to hand out (catalog/training_sessions.py), and the
snapshots `workbench session collect` made of the learners' session folders.

    pages                                              REST API (JSON)
    GET  teaching                                      GET  api/teaching
    GET  teaching/<session>/collected/<time>/<user>.tar.gz   (a snapshot, as an attachment)

Only a session's instructors see its learners, passwords and snapshots; anyone else sees no
session, and gets 404 for a snapshot.
"""

import re

from tornado import web

from ..catalog import audit, training_sessions
from ..sessions.wrapup import COLLECTED, session_folder
from .api import ApiHandler
from .pages import Page

SNAPSHOT_TIME = re.compile(r"\d{8}T\d{6}Z")


def collections(settings: dict, name: str) -> list[dict]:
    """The session's snapshots, newest first: [{"time", "users"}]."""
    root = session_folder(settings, name) / COLLECTED
    folders = sorted((f for f in root.iterdir() if SNAPSHOT_TIME.fullmatch(f.name)), reverse=True) if root.is_dir() else []
    return [{"time": f.name, "users": sorted(p.name.removesuffix(".tar.gz") for p in f.glob("*.tar.gz"))}
            for f in folders]


def teaching(portal, user: str) -> list[dict]:
    """The sessions `user` instructs, each with its learners ([{"user", "temporary",
    "one_time_password"}]), its server name and its snapshots."""
    with portal.ctx.session() as s:
        return [{**t.as_dict(), "server": training_sessions.server_name(t.name),
                 "collections": collections(portal.ctx.settings, t.name),
                 "roster": [{"user": m.user, "temporary": m.temporary, "one_time_password": m.one_time_password}
                            for m in training_sessions.learners(t)]}
                for t in training_sessions.instructed_by(s, user)]


def snapshot(portal, user: str, name: str, time: str, learner: str):
    """The path of `learner`'s snapshot `time` of session `name`, for an instructor of it (audited)."""
    with portal.ctx.session() as s:
        training = next((t for t in training_sessions.instructed_by(s, user) if t.name == name), None)
        if training is None or learner not in {m.user for m in training_sessions.learners(training)} \
                or not SNAPSHOT_TIME.fullmatch(time):
            raise web.HTTPError(404)
        path = session_folder(portal.ctx.settings, name) / COLLECTED / time / f"{learner}.tar.gz"
        if not path.is_file():
            raise web.HTTPError(404)
        audit.record(s, user, "session.download", name, learner=learner, snapshot=time)
        return path


class TeachingPage(Page):
    @web.authenticated
    async def get(self):
        self.render_page("teaching.html", sessions=await self.run(teaching, self.portal, self.user))


class TeachingApi(ApiHandler):
    async def get(self):
        self.send(await self.run(teaching, self.portal, self.user))


class SnapshotFile(Page):
    """A snapshot, as an attachment (Page.send_attachment)."""

    @web.authenticated
    async def get(self, name, time, learner):
        path = await self.run(snapshot, self.portal, self.user, name, time, learner)
        self.send_attachment(path, f"{name}-{learner}-{time}.tar.gz")


SESSION_ROUTES = [(r"teaching", TeachingPage), (r"api/teaching", TeachingApi),
                  (r"teaching/([^/]+)/collected/([^/]+)/([^/]+)\.tar\.gz", SnapshotFile)]

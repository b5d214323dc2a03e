"""The instructors' Teaching page and its API: the training sessions they instruct, with each
learner and, for temporary accounts, the one-time password to hand out (catalog/training_sessions.py).

    pages                 REST API (JSON)
    GET  teaching         GET  api/teaching

Only a session's instructors see its learners' passwords; anyone else sees no session.
"""

from tornado import web

from ..catalog import training_sessions
from .api import ApiHandler
from .pages import Page


def teaching(portal, user: str) -> list[dict]:
    """The sessions `user` instructs, each with its learners: [{"user", "temporary", "one_time_password"}]."""
    with portal.ctx.session() as s:
        return [{**t.as_dict(),
                 "roster": [{"user": m.user, "temporary": m.temporary, "one_time_password": m.one_time_password}
                            for m in t.members if m.role == training_sessions.LEARNER]}
                for t in training_sessions.instructed_by(s, user)]


class TeachingPage(Page):
    @web.authenticated
    async def get(self):
        self.render_page("teaching.html", sessions=await self.run(teaching, self.portal, self.user))


class TeachingApi(ApiHandler):
    async def get(self):
        self.send(await self.run(teaching, self.portal, self.user))


SESSION_ROUTES = [(r"teaching", TeachingPage), (r"api/teaching", TeachingApi)]

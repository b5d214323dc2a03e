"""The airlock in the portal: release requests' pages and their REST API (airlock_desk.py does the steps).

    pages                                     REST API (JSON)
    GET  releases          mine + file form   GET  api/releases   POST api/releases {files, statement, controls,
    POST releases                                                        datasets, count_columns, submit}
    GET  releases/<id>     one release        GET  api/releases/<id>
    POST releases/<id>/<step>                 POST api/releases/<id>/files {files, count_columns}
         step: update submit withdraw         POST api/releases/<id>/(submit|withdraw)
               review return reject release   POST api/releases/<id>/reviews {file_id, decision, comment}
                                              POST api/releases/<id>/(return|reject) {reason}, .../release
    GET  checks            checkers' queue    GET  api/checks     GET api/outbox (the caller's ~/outbox)
    GET  releases/<id>/files/<file>/content   the filed copy (checkers other than the author)
    GET  releases/<id>/files/<file>/download  the released copy (author, once released; audited)
"""

from tornado import web

from ..catalog.models import REJECTED, RETURNED
from ..errors import WorkbenchError
from .api import ApiHandler, yes_or_no
from .base import Refused
from .pages import Page

PREVIEW_LINES, PREVIEW_BYTES = 40, 64 * 1024
CLOSING = {"return": RETURNED, "reject": REJECTED}


def _count_columns(form_value: dict[str, str]) -> dict[str, list[str]]:
    """Form fields count_columns:<file> ("n, deaths") -> {file: ["n", "deaths"]}."""
    return {name: [c.strip() for c in text.split(",") if c.strip()] for name, text in form_value.items()
            if text.strip()}


class ReleasesApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.airlock.mine, self.user))

    async def post(self):
        b = self.body("files", "statement", "controls", "datasets")
        submit = yes_or_no(b, "submit") if "submit" in b else True
        made = await self.run(self.portal.airlock.file, self.user, b["files"], b["statement"], b["controls"],
                              b["datasets"], b.get("count_columns"), submit)
        self.send(made, 201)


class ReleaseApi(ApiHandler):
    async def get(self, request_id):
        self.send(await self.run(self.portal.airlock.get, self.user, int(request_id)))


class ReleaseFilesApi(ApiHandler):
    async def post(self, request_id):
        b = self.body("files")
        self.send(await self.run(self.portal.airlock.update, self.user, int(request_id), b["files"],
                                 b.get("count_columns")))


class ReleaseStepApi(ApiHandler):
    """submit / withdraw (the author), return / reject (a checker, with a reason), release (a checker)."""

    async def post(self, request_id, step):
        desk, request_id = self.portal.airlock, int(request_id)
        if step in CLOSING:
            b = self.body("reason")
            self.send(await self.run(desk.close, self.user, request_id, CLOSING[step], b["reason"]))
        else:
            self.send(await self.run(getattr(desk, step), self.user, request_id))


class ReviewsApi(ApiHandler):
    async def post(self, request_id):
        b = self.body("file_id", "decision")
        if not isinstance(b["file_id"], int) or isinstance(b["file_id"], bool):
            raise Refused(400, f"file_id: must be a file's id, not {b['file_id']!r}", None,
                          {"file_id": "file_id: must be a whole number"})
        self.send(await self.run(self.portal.airlock.review, self.user, int(request_id), b["file_id"],
                                 b["decision"], b.get("comment", "")))


class ChecksApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.airlock.queue, self.user))


class OutboxApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.airlock.outbox, self.user))


class FileContent(Page):
    """A file's bytes, always as an attachment (Page.send_attachment)."""

    @web.authenticated
    async def get(self, request_id, file_id, which):
        name, path = await self.run(self.portal.airlock.content, self.user, int(request_id), int(file_id),
                                     which == "download")
        self.send_attachment(path, name.rsplit("/", 1)[-1])


class ReleasesPage(Page):
    async def show(self, values: dict | None = None, errors: dict | None = None, status: int = 200):
        desk = self.portal.airlock
        mine = await self.run(desk.mine, self.user)
        access = await self.run(self.portal.access, self.user)
        try:
            outbox, outbox_error = await self.run(desk.outbox, self.user), None
        except Refused as e:
            outbox, outbox_error = [], f"{e.message} {e.hint or ''}"
        self.render_page("releases.html", status, releases=mine, outbox=outbox, outbox_error=outbox_error,
                         grants=access["grants"], values=values or {}, errors=errors or {})

    @web.authenticated
    async def get(self):
        await self.show()

    @web.authenticated
    async def post(self):
        names = self.get_body_arguments("files")
        values = {"files": names, "statement": self.form("statement"), "controls": self.form("controls"),
                  "datasets": self.get_body_arguments("datasets"),
                  "count_columns": _count_columns({n: self.form(f"count_columns:{n}") for n in names})}
        try:
            made = await self.run(self.portal.airlock.file, self.user, values["files"], values["statement"],
                                  values["controls"], values["datasets"], values["count_columns"])
        except Refused as e:
            if e.status_code != 400:
                raise
            await self.show(values, e.fields, 400)
            return
        self.back_to(f"releases/{made['id']}")


class ReleasePage(Page):
    async def show(self, request_id: int, errors: dict | None = None, status: int = 200):
        desk = self.portal.airlock
        release = await self.run(desk.get, self.user, request_id)
        previews = {}
        for f in release["files"] if release["is_checker"] else []:  # never shown to the author before release
            if f["kind"] in ("table", "text") and f["size"] <= PREVIEW_BYTES:
                _, path = await self.run(desk.content, self.user, request_id, f["id"])
                previews[f["id"]] = _preview(path)
        outbox = []
        if release["is_author"] and release["state"] in ("pending", "returned"):
            try:
                outbox = await self.run(desk.outbox, self.user)
            except Refused:
                outbox = []
        self.render_page("release_detail.html", status, release=release, previews=previews, outbox=outbox,
                         errors=errors or {})

    @web.authenticated
    async def get(self, request_id):
        await self.show(int(request_id))


class ReleaseStepPage(ReleasePage):
    @web.authenticated
    async def post(self, request_id, step):
        desk, request_id = self.portal.airlock, int(request_id)
        try:
            if step == "review":
                await self.run(desk.review, self.user, request_id, int(self.form("file_id") or 0),
                               self.form("decision"), self.form("comment"))
            elif step in CLOSING:
                await self.run(desk.close, self.user, request_id, CLOSING[step], self.form("reason"))
            elif step == "update":
                names = self.get_body_arguments("files")
                await self.run(desk.update, self.user, request_id, names,
                               _count_columns({n: self.form(f"count_columns:{n}") for n in names}))
            else:
                await self.run(getattr(desk, step), self.user, request_id)
        except Refused as e:
            if e.status_code != 400:
                raise
            await self.show(request_id, e.fields or {"form": e.message}, 400)
            return
        self.back_to(f"releases/{request_id}")


class ChecksPage(Page):
    @web.authenticated
    async def get(self):
        self.render_page("checks.html", releases=await self.run(self.portal.airlock.queue, self.user))


def _preview(path) -> list[str]:
    """The first lines of a small text file, for checkers to read on the page (escaped there)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for _, line in zip(range(PREVIEW_LINES), f)]
    except (UnicodeDecodeError, WorkbenchError):
        return ["(not UTF-8 text: download it to read)"]


RELEASE_ROUTES = [
    (r"api/releases", ReleasesApi), (r"api/releases/([0-9]+)", ReleaseApi),
    (r"api/releases/([0-9]+)/files", ReleaseFilesApi), (r"api/releases/([0-9]+)/reviews", ReviewsApi),
    (r"api/releases/([0-9]+)/(submit|withdraw|return|reject|release)", ReleaseStepApi),
    (r"api/checks", ChecksApi), (r"api/outbox", OutboxApi),
    (r"releases", ReleasesPage), (r"releases/([0-9]+)", ReleasePage),
    (r"releases/([0-9]+)/(review|return|reject|release|update|submit|withdraw)", ReleaseStepPage),
    (r"releases/([0-9]+)/files/([0-9]+)/(content|download)", FileContent), (r"checks", ChecksPage),
]

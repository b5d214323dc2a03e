"""What the portal does for the airlock: file, change and submit releases for their authors;
reviews, returns, rejections and releases for output checkers; downloads of released files.

Filing reads the author's outbox and runs the automatic checks outside any catalog transaction
(ACRO takes seconds), then records the request in one transaction that checks the grants again.
Who may take which step is decided in catalog/releases.py; this module adds who may *see* one.
"""

from pathlib import Path

from ..airlock.checks import CheckPolicy
from ..airlock.filing import Limits, checked_request, file_from_outbox
from ..airlock.outbox import home_folder, list_files, open_outbox
from ..airlock.store import AirlockStore
from ..catalog import releases
from ..catalog.idp_roles import effective_roles
from ..catalog.access_requests import NotAllowed
from ..catalog.models import RELEASED
from ..deployment import parse_memory
from ..errors import NotFound
from ..federation.settings import federation_settings
from ..hub import roles


class AirlockDesk:
    """The airlock's steps over the catalog and store of a WorkbenchContext (`ctx`)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = AirlockStore(Path(ctx.settings["state_dir"]) / "airlock")
        airlock = ctx.settings["airlock"]
        self.limits = Limits(airlock["max_files"], parse_memory(airlock["max_file_size"]))
        self._docker = None

    def held_roles(self, session) -> dict:
        """Who holds which role now, read in the caller's transaction: the settings' `roles:` and
        what the identity provider's groups gave at each user's last login or refresh."""
        return effective_roles(session, self.ctx.settings["roles"])

    def _home(self, user: str) -> Path:
        from ..hub.network import docker_client

        if self._docker is None:
            self._docker = docker_client()
        return home_folder(self._docker, self.ctx.settings["sandbox"]["home_volume"], user)

    def _policy(self, user: str, dataset_ids) -> CheckPolicy:
        """The strictest rules of the datasets the files derive from: the highest minimum count
        (the federation's floor or a grant's condition), and no weights if any grant says so."""
        with self.ctx.session() as s:
            grants = releases.granted_datasets(s, user, dataset_ids)
            conditions = [g.conditions or {} for g in grants.values()]
        floor = federation_settings(self.ctx.settings).min_count
        min_count = max([floor, *(c.get("min_count") or 0 for c in conditions)])
        weights = "no-weights" if any(c.get("no_weights") for c in conditions) else self.ctx.settings["airlock"]["weights"]
        return CheckPolicy(min_count=min_count, weights=weights, acro_python=self.ctx.settings["airlock"]["acro_python"])

    def _filed(self, user: str, names, count_columns, dataset_ids) -> list[releases.NewFile]:
        names, count_columns = checked_request(names, count_columns, self.limits)
        policy = self._policy(user, dataset_ids)
        with open_outbox(self._home(user)) as outbox:
            return file_from_outbox(self.store, outbox, names, count_columns, policy, self.limits)

    def outbox(self, user: str) -> list[dict]:
        """The files in `user`'s outbox now ({name, size})."""
        with open_outbox(self._home(user)) as outbox:
            return list_files(outbox)

    def file(self, user: str, names, statement, controls, dataset_ids, count_columns=None, submit: bool = True
             ) -> dict:
        files = self._filed(user, names, count_columns, dataset_ids)
        with self.ctx.session() as s:
            request = releases.create_release(s, user, statement, controls, dataset_ids, files)
            if submit:
                releases.submit(s, user, request.id)
            return self._view(s, user, request)

    def update(self, user: str, request_id: int, names, count_columns=None) -> dict:
        """File `names` again from the outbox into a pending or returned request."""
        with self.ctx.session() as s:
            dataset_ids = releases.own_release(s, user, request_id).datasets
        files = self._filed(user, names, count_columns, dataset_ids)
        with self.ctx.session() as s:
            return self._view(s, user, releases.update_files(s, user, request_id, files))

    def submit(self, user: str, request_id: int) -> dict:
        with self.ctx.session() as s:
            return self._view(s, user, releases.submit(s, user, request_id))

    def withdraw(self, user: str, request_id: int) -> dict:
        with self.ctx.session() as s:
            return self._view(s, user, releases.withdraw(s, user, request_id))

    def mine(self, user: str) -> list[dict]:
        with self.ctx.session() as s:
            return [r.as_dict() for r in releases.releases_of(s, user)]

    def queue(self, checker: str) -> list[dict]:
        """What `checker` may check (403 for anyone who is not an output checker)."""
        with self.ctx.session() as s:
            self._must_check(s, checker)
            return [self._view(s, checker, r) for r in releases.to_check(s, checker)]

    def get(self, user: str, request_id: int) -> dict:
        with self.ctx.session() as s:
            return self._view(s, user, self._visible(s, user, request_id))

    def review(self, checker: str, request_id: int, file_id: int, decision, comment="") -> dict:
        with self.ctx.session() as s:
            releases.review(s, self.held_roles(s), checker, request_id, file_id, decision, comment)
            return self._view(s, checker, releases.get_release(s, request_id))

    def close(self, checker: str, request_id: int, outcome: str, reason) -> dict:
        with self.ctx.session() as s:
            return self._view(s, checker, releases.close(s, self.held_roles(s), checker, request_id, outcome, reason))

    def release(self, checker: str, request_id: int) -> dict:
        """Copy an approved request's files to the release area and record it released."""
        with self.ctx.session() as s:
            request = releases.get_release(s, request_id)
            releases.check_may_release(self.held_roles(s), checker, request)
            manifest = self.store.release(request_id, {f.name: f.sha256 for f in request.files})
            return self._view(s, checker, releases.mark_released(s, self.held_roles(s), checker, request_id,
                                                                  manifest))

    def content(self, user: str, request_id: int, file_id: int, released: bool = False) -> tuple[str, Path]:
        """(name, path) of a file's filed copy, for output checkers only (to its author it would be
        a way out before any review); with `released`, the released copy, for its author only,
        once released (audited as a download)."""
        with self.ctx.session() as s:
            request = self._visible(s, user, request_id)
            file = next((f for f in request.files if f.id == file_id), None)
            if file is None:
                raise NotFound(f"release request {request_id} has no file {file_id}", "see the files its page lists")
            if not released:
                self._must_check(s, user)
                if roles.normalize(user) == request.author:
                    raise NotAllowed(f"{user} is the author of release {request_id}",
                                     "authors get their files once released, never before review")
                return file.name, self.store.path(file.sha256)
            if roles.normalize(user) != request.author or request.state != RELEASED:
                raise NotAllowed(f"{file.name} of release {request_id} is not released to {user}",
                                 "released files are downloaded by their author once the release is released")
            path = self.store.released_file(request_id, file.name, file.sha256)
            releases.record_download(s, user, request, file)
            return file.name, path

    def _must_check(self, session, user: str) -> None:
        if roles.normalize(user) not in roles.members(self.held_roles(session), roles.OUTPUT_CHECKER):
            raise NotAllowed(f"{user} is not an output checker",
                             "output checkers are named in the deployment settings (roles.output_checkers) or "
                             "by the identity provider's groups (oidc.role_groups)")

    def _visible(self, session, user: str, request_id: int):
        request = releases.get_release(session, request_id)
        if not releases.may_see(self.held_roles(session), user, request):
            raise NotAllowed(f"release request {request_id} is not {user}'s",
                             "see your own releases on the portal's Releases page")
        return request

    def _view(self, session, user: str, request) -> dict:
        """The request as `user` sees it: each file says whether `user` may review it now."""
        session.flush()
        session.refresh(request)
        view, held = request.as_dict(), self.held_roles(session)
        for file, row in zip(request.files, view["files"]):
            earlier = [r.reviewer for r in file.current_reviews()]
            row["may_review"] = (request.state in releases.UNDER_REVIEW and len(earlier) < releases.REVIEWS_NEEDED
                                 and roles.may_review(held, user, request.author, "output",
                                                      earlier_reviewers=earlier))
        view["is_author"] = roles.normalize(user) == request.author
        view["is_checker"] = roles.may_review(held, user, request.author, "output")
        return view

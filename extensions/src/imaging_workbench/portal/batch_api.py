"""The portal's batch-run API, for notebooks (imaging_workbench/batch/client.py) with the user's
own hub token: a user runs notebooks of their own home on datasets they hold a live sandbox grant
for, and sees and cancels only their own runs (imaging_workbench/batch/control.py does the work).

    POST   api/batch        {notebook, dataset, parameters, per_case, profile}  -> the run (201)
    GET    api/batch        the caller's runs, newest first
    GET    api/batch/<id>   one of them (its end read from its container's log once it has exited)
    DELETE api/batch/<id>   cancel it
"""

from ..batch import control, runs
from .api import ApiHandler, yes_or_no


class BatchRunsApi(ApiHandler):
    async def get(self):
        def mine():
            with self.portal.ctx.session() as s:
                ids = [r.id for r in runs.runs_of(s, self.user)]
            return [control.refresh(self.portal.ctx, i) for i in ids]

        self.send(await self.run(mine))

    async def post(self):
        b = self.body("notebook", "dataset")
        per_case = yes_or_no(b, "per_case") if "per_case" in b else False
        made = await self.run(control.submit, self.portal.ctx, self.user, b["notebook"], b["dataset"],
                              b.get("parameters"), per_case, b.get("profile"), actor=self.user)
        self.send(made, 201)


class BatchRunApi(ApiHandler):
    async def get(self, run_id):
        def mine():
            control.show(self.portal.ctx, int(run_id), self.user)  # refused unless it is the caller's
            return control.refresh(self.portal.ctx, int(run_id))

        self.send(await self.run(mine))

    async def delete(self, run_id):
        self.send(await self.run(control.cancel, self.portal.ctx, int(run_id), self.user))


BATCH_ROUTES = [(r"api/batch", BatchRunsApi), (r"api/batch/([0-9]+)", BatchRunApi)]

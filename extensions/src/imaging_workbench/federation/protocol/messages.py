"""The shapes a task and a site's result take on the wire, and the names both sides use.

A task (server → site) is a dict under `PAYLOAD` in a FLARE Shareable: `algorithm`, `version`,
`params`, `site_datasets`, `round`, `rounds`, `researcher`, `job` (the workbench job id),
`conditions` (the grant's conditions), plus what the algorithm's server adds (weights).
A site result (site → server) holds only the sections in `RESULT_SECTIONS`, each released by
`protocol.disclosure` (`privacy` is its accounting), plus `budget` (the researcher's remaining
epsilon at the site) and `policy` (the policy it applied); or `refused` (why, which fields, the
budget) or `error` (a fixed text and an error id). The site's result filter drops anything else.
"""

TASK_NAME = "workbench"
PAYLOAD = "workbench"
RESULT_DIR = "workbench_result"
RESULT_FILE = "result.json"
DATA_SECTIONS = ("counts", "histograms", "means", "weights", "n_samples", "dp_sgd")
RESULT_SECTIONS = DATA_SECTIONS + ("suppressed", "privacy", "budget", "policy", "refused", "meta", "error")


def site_error(error_id: str) -> str:
    """What leaves a site when its part of a job fails: a fixed text and an id, never the error."""
    return (f"the site could not run its part of the job (error id {error_id}; "
            "the site's administrator finds the details under that id in the site's log)")


def payload(shareable) -> dict:
    return shareable.get(PAYLOAD) or {}


def shareable(body: dict):
    from nvflare.apis.shareable import Shareable

    s = Shareable()
    s[PAYLOAD] = body
    return s

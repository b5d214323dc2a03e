"""What an approved algorithm declares: the one place the hub service, the notebook client, the
panel, the FLARE controller and the sites read about it."""

from dataclasses import dataclass
from typing import Callable

from ..protocol.allowlist import CONTROLLER, EXECUTOR


def epsilon_param(default: float, maximum: float = 20.0) -> dict:
    """The `epsilon` parameter every algorithm that releases data takes (a site may allow less)."""
    return {"type": "number", "exclusive_minimum": 0, "maximum": maximum, "default": default,
            "description": "privacy budget this job spends at each site, per dataset (differential privacy)"}


@dataclass(frozen=True)
class Algorithm:
    """An approved algorithm.

    `site_run(params, task, data, dataset_ids, state) -> dict` computes a site's raw result from
    the site's own data (`data`, a `site.data.SiteData`); the site's disclosure filter releases it.
    `server(params, min_count)` combines the sites' releases (`task`, `add`, `end_round`, `final`).
    `table(result)` turns the hub's result into rows for people (the client's `JobResult.table`).
    """

    id: str
    version: str
    title: str
    description: str
    leaves_site: str
    privacy: str  # how a job's epsilon is spent, in words
    params: dict
    site_run: Callable
    server: type
    table: Callable
    weights_leave: bool = False
    # The epsilon the site's disclosure step may spend on one round's release (params, round) ->
    # epsilon; None: the whole job's epsilon in its one round. Training spends most of its
    # epsilon in DP-SGD, which its site function accounts for itself (result `dp_sgd.epsilon`).
    release_epsilon: Callable | None = None
    rounds_param: str | None = None  # the parameter that sets the number of rounds, if any
    # The FLARE classes a job of this algorithm builds: they alone make the sites' allow-lists.
    # The histogram bins a job asks for, (params) -> [protocol.policy.Bins], checked against each
    # site's bin policy at the hub and at the site; None: the algorithm releases no histograms.
    bins: Callable | None = None
    # What in a job's parameters a dataset's weights policy refuses, (params, weights) -> {field:
    # problem}: checked at the hub (with the policy a site last reported) and at the site.
    policy_problems: Callable | None = None
    controller: str = CONTROLLER
    executor: str = EXECUTOR

    def epsilon(self, params: dict) -> float:
        """The epsilon a job with these (complete) parameters spends at each site, per dataset."""
        return float(params["epsilon"])

    def epsilon_for_release(self, params: dict, round_: int) -> float:
        return self.release_epsilon(params, round_) if self.release_epsilon else self.epsilon(params)

    def rounds(self, params: dict) -> int:
        """FLARE rounds of a job (training adds one evaluation-only round)."""
        return int(params[self.rounds_param]) + 1 if self.rounds_param else 1

    def as_dict(self) -> dict:
        return {"id": self.id, "version": self.version, "title": self.title, "description": self.description,
                "leaves_site": self.leaves_site, "privacy": self.privacy, "weights_leave": self.weights_leave,
                "params": self.params}

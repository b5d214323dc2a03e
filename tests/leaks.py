"""The test run's leak check: what a run of `make test` started and left running, found only by
the run's own marks, never by a program's name. Exit 1 naming each leftover, 0 when none.

The marks, all set by scripts/test.sh or by the fixtures:
    WORKBENCH_TEST_RUN=<run id>     environment of pytest and everything it starts
    WORKBENCH_STACK=workbench:<run tmp>/...
                                    environment of the test hubs' services (a hub gives its services
                                    a fresh environment, with the stack's mark in it)
    org.workbench.stack=workbench:<run tmp>/...  or  org.workbench.test-run=<run id>
                                    labels of sandbox and notebook containers
    wbtest-                         name prefix of the docker tier's networks, created since the
                                    run began

dockerd and PostgreSQL started by the set-up stages carry none of these.

    python -m tests.leaks --run-id ID --tmp DIR [--since EPOCH]
"""

import argparse
import sys
from datetime import datetime

from imaging_workbench.stack import STACK_ENV, STACK_LABEL, marked_processes

RUN_ENV = "WORKBENCH_TEST_RUN"
RUN_LABEL = "org.workbench.test-run"
NETWORK_PREFIX = "wbtest-"


def _stack_prefix(tmp: str) -> str:
    return f"workbench:{tmp.rstrip('/')}/"


def leaked_processes(run_id: str, tmp: str) -> list[str]:
    return [f"process {p.pid}: {p.command[:160]}"
            for p in marked_processes({RUN_ENV: run_id}, {STACK_ENV: _stack_prefix(tmp)})]


def _created(network) -> float:
    stamp = network.attrs.get("Created", "")[:26].rstrip("Z")  # docker gives nanoseconds
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


def leaked_docker(run_id: str, tmp: str, since: float) -> list[str]:
    from imaging_workbench.errors import WorkbenchError
    from imaging_workbench.hub.network import docker_client

    try:
        docker = docker_client()
    except WorkbenchError:
        return []  # no dockerd: nothing of ours can run in it
    found = []
    for container in docker.containers.list(all=True):
        labels = container.labels or {}
        if labels.get(RUN_LABEL) == run_id or labels.get(STACK_LABEL, "").startswith(_stack_prefix(tmp)):
            found.append(f"container {container.name} ({container.status})")
    found += [f"network {n.name}" for n in docker.networks.list(names=[NETWORK_PREFIX])
              if n.name.startswith(NETWORK_PREFIX) and _created(docker.networks.get(n.id)) >= since]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.leaks", description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True, help="the WORKBENCH_TEST_RUN of the run to check")
    parser.add_argument("--tmp", required=True, help="the run's temporary folder (pytest --basetemp parent)")
    parser.add_argument("--since", type=float, default=0.0, help="when the run began (seconds since the epoch)")
    args = parser.parse_args(argv)
    leaks = leaked_processes(args.run_id, args.tmp) + leaked_docker(args.run_id, args.tmp, args.since)
    for leak in leaks:
        print(f"leak check: left running by the tests: {leak}", file=sys.stderr)
    print(f"leak check: {len(leaks)} left running" if leaks else "leak check: nothing left running",
          file=sys.stderr)
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped notebooks reach every sandbox: each start delivers notebooks/researcher and
notebooks/clinician from the image into ~/examples (imaging_workbench/material.py), and a
researcher's edits survive the next start."""

import pytest

from imaging_workbench.catalog import accounts

from .conftest import run_in, start_server, stop_server

pytestmark = pytest.mark.docker

USER = "ella"  # no grants; her server is this test's alone
EXAMPLES = "/home/jovyan/examples"
SHIPPED = ["./clinician/case_review.ipynb", "./clinician/cohort_overview.ipynb", "./researcher/federated_statistics.ipynb",
           "./researcher/view_case.ipynb"]
EDITED = f"{EXAMPLES}/researcher/view_case.ipynb"


def notebooks(docker) -> list[str]:
    code, listing = run_in(docker, USER, f"cd {EXAMPLES} && find . -name '*.ipynb' | sort")
    assert code == 0, listing
    return listing.split()


def test_examples_arrive_and_the_users_edits_survive_a_restart(sandbox_hub, docker):
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER)
    start_server(sandbox_hub, USER)
    try:
        assert notebooks(docker) == SHIPPED
        code, edited = run_in(docker, USER, f"echo '# my notes' >> {EDITED} && sha256sum {EDITED} && "
                                            f"rm {EXAMPLES}/clinician/case_review.ipynb")
        assert code == 0, edited

        stop_server(sandbox_hub, USER)
        start_server(sandbox_hub, USER)
        code, after = run_in(docker, USER, f"sha256sum {EDITED}")
        assert code == 0 and after == edited  # the edit is kept
        assert notebooks(docker) == SHIPPED  # the deleted one is back, and no "(updated)" copy appeared
    finally:
        stop_server(sandbox_hub, USER)

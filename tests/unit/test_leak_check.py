"""The test run's leak check (scripts/test.sh runs it last) names what a run left running and fails."""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).parents[2]


def leak_check(run_id: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.leaks", "--run-id", run_id, "--tmp", str(tmp),
                           "--since", str(time.time())], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_process_left_on_purpose_is_named_and_fails_the_check(tmp_path):
    run_id = f"leak-check-test-{os.getpid()}"
    left = subprocess.Popen(["sleep", "300"], env={**os.environ, "WORKBENCH_TEST_RUN": run_id},
                            start_new_session=True)
    try:
        found = leak_check(run_id, tmp_path)
        assert found.returncode == 1, found.stderr
        assert f"process {left.pid}: sleep 300" in found.stderr
    finally:
        left.kill()
        left.wait()
    clean = leak_check(run_id, tmp_path)
    assert clean.returncode == 0 and "nothing left running" in clean.stderr, clean.stderr


def test_a_service_of_a_test_hub_is_found_by_its_stack_mark(tmp_path):
    """A hub gives its services a fresh environment: they carry the stack's mark, not the run's."""
    service = subprocess.Popen(["sleep", "300"], env={"PATH": os.environ["PATH"],
                                                      "WORKBENCH_STACK": f"workbench:{tmp_path}/hub/state"},
                               start_new_session=True)
    try:
        found = leak_check("some-other-run", tmp_path)
        assert found.returncode == 1 and f"process {service.pid}" in found.stderr
        assert leak_check("some-other-run", tmp_path / "elsewhere").returncode == 0
    finally:
        service.kill()
        service.wait()

"""Fixtures every tier shares: deployment settings on a fresh catalog, the CLI in-process, a real PostgreSQL."""

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from imaging_workbench.cli import main as workbench_main
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults

from .waiting import free_port, wait_for


@pytest.fixture(scope="session")
def small_lung_ct(tmp_path_factory) -> Path:
    """The demo's lung-ct dataset at size "small", generated once per session: copy it into place
    (`copy_small_lung_ct`) before `ensure_demo_data`, which then finds it complete."""
    from imaging_workbench.dicom.demo import DEMO_DATASETS, ensure_demo_data

    root = tmp_path_factory.mktemp("small-demo")
    ensure_demo_data(root, "small", datasets=[d for d in DEMO_DATASETS if d.id == "lung-ct"])
    return root / "lung-ct"


@pytest.fixture
def copy_small_lung_ct(small_lung_ct):
    def copy(demo_root: Path) -> Path:
        shutil.copytree(small_lung_ct, Path(demo_root) / "lung-ct", dirs_exist_ok=True)
        return Path(demo_root) / "lung-ct"
    return copy


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL cluster on a free loopback port, run as the postgres user."""
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None:
        pytest.fail("PostgreSQL server binaries are missing: run scripts/ensure_host.sh")
    bindir = Path(os.path.realpath(initdb)).parent
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    base.chmod(0o777)
    data = base / "data"
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(as_pg + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    log = data.parent / "pg.log"
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                            f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    try:
        yield {"port": port, "bindir": bindir, "socket_dir": data.parent}
    finally:
        subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _postgres_url(server, name: str, template: str | None = None) -> str:
    copy = ["-T", template] if template else []
    subprocess.run([str(server["bindir"] / "createdb"), "-h", "127.0.0.1", "-p", str(server["port"]),
                    "-U", "postgres", *copy, name], check=True, capture_output=True)
    return f"postgresql+psycopg://postgres@127.0.0.1:{server['port']}/{name}"


@pytest.fixture(scope="session")
def postgres_catalog_template(postgres_server) -> str:
    """The name of a PostgreSQL database migrated to the newest revision once: the catalogs of
    the tests are its copies, as migrating each anew cost about 0.7 s a test (160 tests)."""
    from imaging_workbench.catalog.engine import create_catalog_engine

    name = f"wb_{os.getpid()}_template"
    create_catalog_engine(_postgres_url(postgres_server, name)).dispose()  # no connection may stay open to copy it
    return name


@pytest.fixture(scope="session")
def sqlite_catalog_template(tmp_path_factory) -> Path:
    """A SQLite catalog at the newest revision, made once and copied for each test (0.3 s less each)."""
    from imaging_workbench.catalog.engine import create_catalog_engine

    path = tmp_path_factory.mktemp("catalog-template") / "catalog.sqlite"
    create_catalog_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each catalog test runs on SQLite and, in the postgres tier, on a real PostgreSQL server, on a
    copy of a catalog already at the newest revision (an empty database for tests marked
    `empty_database`, which migrate it themselves)."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        path = tmp_path / "catalog.sqlite"
        if not empty:
            shutil.copyfile(request.getfixturevalue("sqlite_catalog_template"), path)
            path.chmod(0o600)
        return f"sqlite:///{path}"
    server = request.getfixturevalue("postgres_server")
    template = None if empty else request.getfixturevalue("postgres_catalog_template")
    return _postgres_url(server, f"wb_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}", template)


@pytest.fixture
def settings(tmp_path, request) -> dict:
    """The default deployment settings with their state under tmp_path: a SQLite catalog, or both databases for
    tests that also ask for `database_url`."""
    url = request.getfixturevalue("database_url") if "database_url" in request.fixturenames else None
    return validate_settings(with_defaults({"state_dir": str(tmp_path / "state"), "database_url": url}))


@pytest.fixture
def ctx(settings) -> WorkbenchContext:
    return WorkbenchContext(settings, actor="steward")


@pytest.fixture
def settings_file(settings, tmp_path) -> Path:
    import yaml

    path = tmp_path / "workbench.yaml"
    path.write_text(yaml.safe_dump({"state_dir": settings["state_dir"], "database_url": settings["database_url"]}))
    return path


@pytest.fixture
def cli(settings_file):
    """Run `workbench ARGS...` in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str, actor: str = "steward"):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = workbench_main(["--settings", str(settings_file), "--as", actor, *args])
            except SystemExit as e:  # argparse usage errors
                rc = e.code
        return rc, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def dataset_dir(tmp_path):
    """Make a world-readable folder standing for a dataset."""

    def make(name: str) -> Path:
        path = tmp_path / "datasets" / name
        path.mkdir(parents=True)
        (path / "README.txt").write_text(f"dataset {name}\n")
        for p in (path, path.parent, tmp_path):
            p.chmod(0o755)
        return path

    return make

"""The audit key: made on first use (mode 0600), refused when others can read it, never silently
replaced, and the same key wherever the hub or the CLI opens the catalog."""

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from imaging_workbench.catalog import audit, audit_key
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.hub.catalog_link import catalog_session


def record(ctx, subject="alice/lung"):
    with ctx.session() as s:
        audit.record(s, "steward", "grant", subject)


def test_the_key_is_made_on_first_use_readable_by_its_owner_only(ctx):
    key_file = ctx.state_dir / "audit.key"
    assert not key_file.exists()
    record(ctx)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32


@pytest.mark.usefixtures("database_url")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620], ids=lambda mode: f"{mode:04o}")
def test_a_key_open_to_others_is_refused(ctx, cli, mode):
    record(ctx)
    key_file = ctx.state_dir / "audit.key"
    key_file.chmod(mode)
    with pytest.raises(WorkbenchError, match=f"audit key file {key_file} is open to group or others "
                                             f"\\(mode {mode:03o}\\)"):
        record(ctx)
    rc, _, err = cli("audit", "--verify")
    assert rc == 1 and f"chmod 600 {key_file}" in err


def test_the_deployments_audit_key_file_setting_is_used(settings, tmp_path):
    (tmp_path / "keys").mkdir()
    ctx = WorkbenchContext({**settings, "audit_key_file": str(tmp_path / "keys" / "catalog.key")}, actor="steward")
    record(ctx)
    assert (tmp_path / "keys" / "catalog.key").is_file() and not (ctx.state_dir / "audit.key").exists()


def test_a_key_is_not_made_in_a_folder_that_does_not_exist(settings, tmp_path):
    ctx = WorkbenchContext({**settings, "audit_key_file": str(tmp_path / "nowhere" / "audit.key")}, actor="steward")
    with pytest.raises(WorkbenchError, match=f"the folder of the audit key file {tmp_path}/nowhere/audit.key"):
        record(ctx)


def test_a_lost_key_is_not_replaced_while_keyed_rows_exist(ctx):
    record(ctx)
    (ctx.state_dir / "audit.key").unlink()
    with pytest.raises(WorkbenchError, match="is missing, but the audit trail holds rows made with a key"):
        record(ctx)
    with ctx.session() as s, pytest.raises(WorkbenchError, match="is missing"):
        audit.verify_chain(s)
    assert not (ctx.state_dir / "audit.key").exists()


def test_another_key_fails_every_row(ctx):
    record(ctx, "alice/lung")
    record(ctx, "bob/lung")
    key_file = ctx.state_dir / "audit.key"
    key_file.write_text("ab" * 32 + "\n")
    with ctx.session() as s:
        assert len(audit.verify_chain(s)) == 2


def test_a_file_that_holds_no_key_is_refused(ctx):
    key_file = ctx.state_dir / "audit.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    with pytest.raises(WorkbenchError, match="does not hold a key"):
        record(ctx)


def test_processes_creating_the_key_at_once_agree(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: audit_key.ensure_key(tmp_path / "audit.key"), range(16)))
    assert len(keys) == 1 and [p.name for p in tmp_path.iterdir()] == ["audit.key"]


def test_the_hub_keys_rows_with_the_same_key_as_the_cli(ctx):
    """Default deployment settings: the hub knows only the catalog URL, and the key lies beside the SQLite file."""
    record(ctx, "alice/lung")
    with catalog_session(ctx.db_url) as s:
        audit.record(s, "hub", "server.start", "alice/")
    with ctx.session() as s:
        assert [e.actor for e in audit.events(s)] == ["steward", "hub"] and audit.verify_chain(s) == []

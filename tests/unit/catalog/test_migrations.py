"""Schema migrations: fresh catalogs get every revision, the models match the newest one, and a
catalog of the previous release (create_all, no alembic_version) upgrades with every row kept
and its audit chain sealed. On SQLite and PostgreSQL."""

import hashlib
import json
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (JSON, Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, inspect,
                        select, text)
from sqlalchemy.orm import Session

from imaging_workbench.catalog import audit
from imaging_workbench.catalog.engine import catalog_metadata, create_catalog_engine
from imaging_workbench.catalog.migrations import BASELINE_TABLES, alembic_config, head_revision
from imaging_workbench.catalog.models import UTCDateTime
from imaging_workbench.clock import utcnow
from imaging_workbench.errors import WorkbenchError

pytestmark = [pytest.mark.usefixtures("database_url"), pytest.mark.empty_database]

T0 = utcnow().replace(microsecond=123456) - timedelta(days=30)


LATER_TABLES = ("federation_site_policies", "federation_budgets",  # added by revision 0003
                "access_requests", "access_request_items",         # added by revision 0004
                "release_requests", "release_files", "release_reviews",  # added by revision 0005
                "idp_roles",                                          # added by revision 0006
                "training_sessions", "session_members",                # added by revision 0007
                "batch_runs",                                         # added by revision 0008
                "dashboards", "dashboard_approvals",                  # added by revision 0009
                "tools")                                              # added by revision 0010


def previous_release_metadata() -> MetaData:
    """What the release before migrations made with create_all: today's models, except that
    audit_events had neither `scheme` nor `dataset` (revision 0002), the federation's site
    reports did not exist (revision 0003), nor access requests or the airlock's tables, nor grants' `mode`, `conditions`
    and `request_id` (revision 0004), nor accounts' `last_login_at` (revision 0007). When a later revision changes another table, freeze that
    table's old shape here too."""
    old = MetaData()
    for table in catalog_metadata().sorted_tables:
        if table.name not in ("audit_events", "grants", "accounts", *LATER_TABLES):
            table.to_metadata(old)
    Table("accounts", old,
          Column("name", String(128), primary_key=True),
          Column("password_hash", Text, nullable=True),
          Column("is_admin", Boolean, nullable=False),
          Column("created_at", UTCDateTime, nullable=False))
    Table("grants", old,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("user", String(128), ForeignKey("accounts.name"), nullable=False, index=True),
          Column("dataset_id", String(64), ForeignKey("datasets.id"), nullable=False, index=True),
          Column("granted_by", String(128), nullable=False),
          Column("purpose", Text, nullable=False),
          Column("granted_at", UTCDateTime, nullable=False),
          Column("expires_at", UTCDateTime, nullable=False),
          Column("revoked_at", UTCDateTime, nullable=True),
          Column("revoked_by", String(128), nullable=True))
    Table("audit_events", old,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("at", UTCDateTime, nullable=False),
          Column("actor", String(128), nullable=False),
          Column("action", String(64), nullable=False, index=True),
          Column("subject", String(256), nullable=False),
          Column("details", JSON, nullable=False),
          Column("prev_hash", String(64), nullable=False),
          Column("hash", String(64), nullable=False, unique=True))
    return old


def schema_differences(url: str, metadata: MetaData) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def old_digest(prev_hash, at, actor, action, subject, details) -> str:
    """The previous release's unkeyed row hash, as it wrote it."""
    body = json.dumps([prev_hash, at.isoformat(timespec="microseconds"), actor, action, subject, details],
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def old_rows() -> dict[str, list[dict]]:
    """A row or more in every table, as the previous release wrote them; audit rows chained."""
    rows = {
        "accounts": [{"name": "alice", "password_hash": "scrypt$00$11", "is_admin": False, "created_at": T0},
                     {"name": "admin", "password_hash": None, "is_admin": True, "created_at": T0}],
        "datasets": [{"id": "lung", "title": "Lung CT", "cancer_type": "lung", "modality": "CT", "body_part": "CHEST",
                      "site": "site-1", "n_subjects": 3, "n_series": 7, "host_path": "/data/lung", "licence": "CC-BY",
                      "created_at": T0}],
        "grants": [{"id": 1, "user": "alice", "dataset_id": "lung", "granted_by": "admin", "purpose": "study",
                    "granted_at": T0, "expires_at": T0 + timedelta(days=365), "revoked_at": None, "revoked_by": None},
                   {"id": 2, "user": "alice", "dataset_id": "lung", "granted_by": "admin", "purpose": "old",
                    "granted_at": T0, "expires_at": T0 + timedelta(days=1), "revoked_at": T0 + timedelta(hours=1),
                    "revoked_by": "admin"}],
        "server_mounts": [{"id": 1, "user": "alice", "server_name": "", "container": "workbench-alice",
                           "datasets": ["lung"], "started_at": T0, "stopped_at": None}],
        "federated_jobs": [{"id": "job1", "user": "alice", "algorithm": "cohort-statistics", "version": "1",
                            "params": {"quantiles": [0.5]}, "datasets": ["lung"], "site_datasets": {"site-1": ["lung"]},
                            "flare_job_id": "f-1", "status": "finished", "progress": {"rounds": 1},
                            "result": {"patients": 3}, "result_dir": "/tmp/r", "error": "", "submitted_at": T0,
                            "deadline": T0 + timedelta(hours=1), "finished_at": T0 + timedelta(minutes=5)}],
        "dicom_roots": [{"dataset_id": "lung", "folder": "/data/lung", "indexed_at": T0, "n_files": 2,
                         "n_problems": 1}],
        "dicom_instances": [
            {"id": 1, "dataset_id": "lung", "path": "a/1.dcm", "size": 5_000_000_000,
             "mtime_ns": 1_700_000_000_123_456_789, "sop_uid": "1.2.3.1", "series_uid": "1.2.3", "modality": "CT", "rows": 512, "cols": 512,
             "position": [0.0, 0.0, -10.5], "orientation": [1, 0, 0, 0, 1, 0], "pixel_spacing": [0.7, 0.7],
             "slope": 1.0, "intercept": -1024.0, "pixel_offset": 1234, "pixel_length": 524288},
            {"id": 2, "dataset_id": "lung", "path": "a/broken", "status": "problem", "problem": "not DICOM"}],
        "dicom_series": [{"id": 1, "dataset_id": "lung", "series_uid": "1.2.3", "patient_id": "P1", "modality": "CT",
                          "n_instances": 1, "n_slices": 1, "rows": 512, "cols": 512, "spacing": [2.5, 0.7, 0.7],
                          "transfer_syntaxes": ["1.2.840.10008.1.2.1"], "seg_uids": []}],
    }
    prev, trail = audit.GENESIS, []
    for i, (action, subject, details) in enumerate([("user.add", "alice", {"admin": False}),
                                                    ("dataset.add", "lung", {"path": "/data/lung"}),
                                                    ("grant", "alice/lung", {"grant_id": 1, "days": 365}),
                                                    ("server.start", "alice/", {"datasets": ["lung"]})]):
        at = T0 + timedelta(minutes=i)
        digest = old_digest(prev, at, "admin", action, subject, details)
        trail.append({"id": i + 1, "at": at, "actor": "admin", "action": action, "subject": subject,
                      "details": details, "prev_hash": prev, "hash": digest})
        prev = digest
    rows["audit_events"] = trail
    return rows


def make_previous_release_catalog(url: str, rows: dict[str, list[dict]]) -> MetaData:
    old = previous_release_metadata()
    engine = create_engine(url)
    try:
        old.create_all(engine)
        with engine.begin() as conn:
            for table in old.sorted_tables:
                for row in rows.get(table.name, []):
                    conn.execute(table.insert(), row)
            if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for table in old.sorted_tables:
                    if "id" in table.c and isinstance(table.c.id.type, Integer):
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                          f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"))
    finally:
        engine.dispose()
    return old


def read_all(url: str, metadata: MetaData) -> dict[str, list[dict]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                    for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def version(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


def test_head_revision_is_alembics_head():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == head_revision()


def test_a_fresh_catalog_gets_every_revision_and_matches_the_models(database_url):
    create_catalog_engine(database_url).dispose()
    assert version(database_url) == head_revision()
    assert schema_differences(database_url, catalog_metadata()) == []


def test_the_baseline_is_the_previous_releases_schema(database_url):
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
    finally:
        engine.dispose()
    assert schema_differences(database_url, previous_release_metadata()) == []
    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == BASELINE_TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_a_previous_release_catalog_upgrades_keeping_every_row(database_url, tmp_path, cli):
    old = make_previous_release_catalog(database_url, old_rows())
    before = read_all(database_url, old)
    assert all(before.values()), "a row in every table"
    key_file = tmp_path / "state" / "audit.key"  # where the settings of the `cli` fixture keep it
    key_file.parent.mkdir()

    engine = create_catalog_engine(database_url, key_file)

    assert version(database_url) == head_revision()
    assert schema_differences(database_url, catalog_metadata()) == []
    after = read_all(database_url, old)
    assert after.pop("audit_events")[:4] == before.pop("audit_events")
    assert after == before
    with Session(engine, info={audit.KEY_FILE: key_file}) as s:
        trail = audit.events(s)
        assert [e.scheme for e in trail] == [audit.UNKEYED] * 4 + [audit.KEYED]
        assert (trail[-1].action, trail[-1].details) == (audit.UPGRADE, {"unkeyed_rows": 4})
        assert audit.verify_chain(s) == []
    engine.dispose()
    rc, out, err = cli("users", "add", "bob")  # the upgraded catalog takes new rows
    assert rc == 0, err
    rc, out, _ = cli("audit", "--verify")
    assert rc == 0 and "intact (6 events)" in out


def test_an_upgrade_that_cannot_seal_the_trail_changes_nothing(database_url):
    make_previous_release_catalog(database_url, old_rows())
    with pytest.raises(WorkbenchError, match=r"audit trail \(4 rows\) must be sealed with the audit key"):
        create_catalog_engine(database_url)  # no key file given
    assert version(database_url) is None
    engine = create_engine(database_url)
    try:
        assert "scheme" not in {c["name"] for c in inspect(engine).get_columns("audit_events")}
    finally:
        engine.dispose()


def test_a_previous_release_catalog_without_audit_rows_needs_no_key(database_url):
    make_previous_release_catalog(database_url, {})
    create_catalog_engine(database_url).dispose()
    assert version(database_url) == head_revision()


def test_a_catalog_newer_than_this_workbench_is_refused(database_url):
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(WorkbenchError, match="revision 9999, newer than this workbench knows"):
        create_catalog_engine(database_url)


def test_a_database_with_only_some_of_our_tables_is_refused(database_url):
    engine = create_engine(database_url)
    with engine.begin() as conn:
        previous_release_metadata().tables["accounts"].create(conn)
    engine.dispose()
    with pytest.raises(WorkbenchError, match="lacks audit_events, datasets"):
        create_catalog_engine(database_url)


@pytest.mark.parametrize("url, message", [
    ("not a url", "database_url 'not a url' is not a database URL"),
    ("postgresql+psycopg://nobody:secret@127.0.0.1:1/catalog", "cannot open the catalog database "
                                                               "postgresql+psycopg://nobody:***@127.0.0.1:1/catalog"),
])
def test_bad_database_urls_say_what_to_fix(url, message):
    with pytest.raises(WorkbenchError) as caught:
        create_catalog_engine(url)
    assert message in str(caught.value) and "what to do:" in str(caught.value)

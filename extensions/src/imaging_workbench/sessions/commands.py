"""CLI: `workbench session create|list|show|prespawn|status|collect|end`, an educator's training sessions."""

from datetime import datetime, timezone
from pathlib import Path

from ..catalog import training_sessions
from ..catalog.models import Account
from ..errors import WorkbenchError
from ..hub.roles import normalize
from ..output import print_rows
from . import wrapup
from .hub_api import SessionHub
from .prespawn import prespawn

LIST_COLUMNS = ["name", "dataset_id", "starts_at", "ends_at", "learners", "instructors", "ended_at"]
STATUS_COLUMNS = ["learner", "server", "logged_in", "spawn_error"]


def parse_time(value: str, option: str) -> datetime:
    """An ISO date and time (UTC unless it says otherwise), for --start and --end."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WorkbenchError(f"{option} {value!r} is not a date and time",
                             "write it as 2026-12-01T09:00 (UTC) or with an offset, 2026-12-01T09:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _plan(ctx, args) -> training_sessions.SessionPlan:
    try:
        roster = Path(args.roster).read_text()
    except OSError as e:
        raise WorkbenchError(f"--roster {args.roster}: {e.strerror}", "name a CSV file with a 'username' column") from None
    material = Path(args.material).resolve()
    if not material.is_dir():
        raise WorkbenchError(f"--material {args.material} is not a folder", "name the course's notebook folder")
    profiles = ctx.settings["sandbox"]["profiles"]
    if args.profile not in profiles:
        raise WorkbenchError(f"--profile {args.profile!r} is not a profile (known: {', '.join(profiles)})",
                             "pick one of the deployment settings' sandbox.profiles")
    instructors = [normalize(n.strip()) for n in args.instructors.split(",") if n.strip()]
    return training_sessions.SessionPlan(
        name=args.name, learners=training_sessions.read_roster(roster), instructors=list(dict.fromkeys(instructors)),
        starts_at=parse_time(args.start, "--start"), ends_at=parse_time(args.end, "--end"),
        dataset_id=args.dataset, material=str(material), profile=args.profile)


def _create(ctx, args):
    plan = _plan(ctx, args)
    with ctx.session() as s:
        made = training_sessions.create_session(s, ctx.actor, plan, args.temporary_accounts).as_dict()
    print(f"training session '{made['name']}': {len(made['learners'])} learners, instructors "
          f"{', '.join(made['instructors'])}, {made['dataset_id']} from {made['starts_at']:%Y-%m-%d %H:%M} "
          f"to {made['ends_at']:%Y-%m-%d %H:%M} UTC")
    if made["temporary_accounts"]:
        print(f"{len(made['temporary_accounts'])} temporary accounts made; their one-time passwords are for the "
              "instructors, in the portal (they are not printed or written to a file)")


def _list(ctx, args):
    with ctx.session() as s:
        rows = [t.as_dict() for t in training_sessions.list_sessions(s)]
    if not args.json:
        for row in rows:
            row["learners"], row["instructors"] = len(row["learners"]), ", ".join(row["instructors"])
    print_rows(rows, LIST_COLUMNS, args.json)


def _show(ctx, args):
    with ctx.session() as s:
        row = training_sessions.get_session(s, args.name).as_dict()
    if args.json:
        return print_rows([row], [], as_json=True)
    print_rows([row], ["name", "dataset_id", "profile", "material", "starts_at", "ends_at", "created_by", "ended_at"])
    print(f"instructors: {', '.join(row['instructors'])}")
    print(f"learners ({len(row['learners'])}): {', '.join(row['learners'])}")
    if row["temporary_accounts"]:
        print(f"temporary accounts: {', '.join(row['temporary_accounts'])}")


def _prespawn(ctx, args):
    with ctx.session() as s:
        training = training_sessions.live_session(s, args.name)
        learners = [m.user for m in training_sessions.learners(training)]
        instructors = training_sessions.instructor_names(training)
    errors = prespawn(SessionHub.from_settings(ctx.settings), args.name, learners, instructors,
                      args.concurrency, args.timeout)
    with ctx.session() as s:
        training_sessions.record_prespawn(s, ctx.actor, args.name, errors)
    failed = {u: e for u, e in errors.items() if e is not None}
    print(f"{len(errors) - len(failed)} of {len(errors)} learners' servers ready; shared with "
          f"{', '.join(instructors)}")
    if failed:
        for user, error in sorted(failed.items()):
            print(f"  {user}: {error}")
        raise WorkbenchError(f"{len(failed)} servers of '{args.name}' did not start",
                             f"see 'workbench session status {args.name}'; running prespawn again retries them")


def status_rows(ctx, name: str, hub: SessionHub) -> list[dict]:
    """Per learner: their session server's state, their last login since the session was made,
    and the latest pre-spawn's error."""
    with ctx.session() as s:
        training = training_sessions.get_session(s, name)
        since = training.created_at
        members = [(m.user, m.spawn_error) for m in training_sessions.learners(training)]
        logins = {m: s.get(Account, m).last_login_at for m, _ in members}
    server_name = training_sessions.server_name(name)
    rows = []
    for user, error in members:
        server = hub.server(user, server_name)
        state = "stopped" if server is None else ("ready" if server.get("ready") else "pending")
        login = logins[user]
        rows.append({"learner": user, "server": state,
                     "logged_in": f"{login:%Y-%m-%d %H:%M}" if login and login >= since else "not yet",
                     "spawn_error": error or ""})
    return rows


def _status(ctx, args):
    rows = status_rows(ctx, args.name, SessionHub.from_settings(ctx.settings))
    print_rows(rows, STATUS_COLUMNS, args.json)
    if not args.json:
        counts = {state: sum(r["server"] == state for r in rows) for state in ("ready", "pending", "stopped")}
        print(f"{counts['ready']} ready, {counts['pending']} starting, {counts['stopped']} not running; "
              f"{sum(r['logged_in'] == 'not yet' for r in rows)} not logged in yet; "
              f"{sum(bool(r['spawn_error']) for r in rows)} spawn failures")


def _collect(ctx, args):
    out, packed = wrapup.collect(ctx, args.name)
    print(f"collected {sum(bool(f) for f in packed.values())} of {len(packed)} learners' session folders into "
          f"{out} (read-only; instructors download them from the portal's Teaching page)")
    missing = sorted(u for u, f in packed.items() if not f)
    if missing:
        print(f"nothing to collect yet from: {', '.join(missing)}")


def _end(ctx, args):
    done = wrapup.end(ctx, args.name, SessionHub.from_settings(ctx.settings))
    print(f"training session '{args.name}' ended: {len(done['stopped'])} servers stopped, "
          f"{len(done['archived'])} learners' work archived under "
          f"{wrapup.session_folder(ctx.settings, args.name) / wrapup.ARCHIVE}, {len(done['grants_ended'])} grants "
          f"ended, {len(done['accounts_removed'])} temporary accounts removed")


def register(subparsers) -> None:
    ss = subparsers.add_parser("session", help="training sessions for a room of learners").add_subparsers(
        dest="session_command", required=True, metavar="ACTION")
    p = ss.add_parser("create", help="a session: its roster, instructors, time window, dataset, material, profile")
    p.add_argument("name", help="the session's name: lower-case letters, digits, '-', '.', '_', '~'")
    p.add_argument("--roster", required=True, help="CSV file with a 'username' column, one row per learner")
    p.add_argument("--instructors", required=True, help="comma-separated user names")
    p.add_argument("--start", required=True, help="when it starts, e.g. 2026-12-01T09:00 (UTC unless an offset)")
    p.add_argument("--end", required=True, help="when it ends; the teaching dataset's grants end then")
    p.add_argument("--dataset", required=True, help="the teaching dataset's id")
    p.add_argument("--material", required=True, help="folder of the course's notebooks")
    p.add_argument("--profile", required=True, help="the sandbox profile learners get")
    p.add_argument("--temporary-accounts", action="store_true",
                   help="make a one-time account for each roster name without one (local login only)")
    p.set_defaults(handler=_create)
    p = ss.add_parser("list", help="every session, by start")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = ss.add_parser("show", help="one session: its window, dataset, instructors and learners")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
    p = ss.add_parser("prespawn", help="start every learner's server now, and share each with the instructors")
    p.add_argument("name")
    p.add_argument("--concurrency", type=int, default=4, help="spawns at once (default 4)")
    p.add_argument("--timeout", type=float, default=300, help="seconds one server may take to be ready")
    p.set_defaults(handler=_prespawn)
    p = ss.add_parser("status", help="who is running, who has not logged in, and spawn failures")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_status)
    p = ss.add_parser("collect", help="a read-only snapshot of each learner's session folder, for the instructors")
    p.add_argument("name")
    p.set_defaults(handler=_collect)
    p = ss.add_parser("end", help="stop the servers, archive each learner's work, end the grants and temporary "
                                  "accounts")
    p.add_argument("name")
    p.set_defaults(handler=_end)

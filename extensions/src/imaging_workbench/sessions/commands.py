"""CLI: `workbench session create|list|show`, an educator's training sessions."""

from datetime import datetime, timezone
from pathlib import Path

from ..catalog import training_sessions
from ..errors import WorkbenchError
from ..hub.roles import normalize
from ..output import print_rows

LIST_COLUMNS = ["name", "dataset_id", "starts_at", "ends_at", "learners", "instructors", "ended_at"]


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

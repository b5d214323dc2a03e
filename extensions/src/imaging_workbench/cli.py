"""`workbench`: the steward's and operator's command line.

Each module in COMMAND_MODULES adds its sub-commands through `register(subparsers)`;
a sub-command's handler takes (ctx, args) and returns an exit status or None.
"""

import argparse
import importlib
import sys

from .errors import WorkbenchError

COMMAND_MODULES = (
    "imaging_workbench.catalog.commands",
    "imaging_workbench.catalog.dashboard_commands",
    "imaging_workbench.airlock.commands",
    "imaging_workbench.batch.commands",
    "imaging_workbench.tools.commands",
    "imaging_workbench.sessions.commands",
    "imaging_workbench.hub.commands",
    "imaging_workbench.dicom.commands",
    "imaging_workbench.federation.commands",
    "imaging_workbench.federation.site.commands",
    "imaging_workbench.private_state_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Cancer Imaging Workbench")
    parser.add_argument("--settings", "--site", dest="settings_file", metavar="FILE",
                        help="deployment settings file (default: $WORKBENCH_SETTINGS or ./hub_config/workbench.yaml); "
                             "--site is its old name")
    parser.add_argument("--as", dest="actor", metavar="NAME", help="who acts, for the audit trail (default: $USER)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .context import WorkbenchContext
    from .deployment import load_settings

    try:
        ctx = WorkbenchContext(load_settings(args.settings_file), actor=args.actor)
        return args.handler(ctx, args) or 0
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

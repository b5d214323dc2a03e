"""A stand-in for FLARE's admin API in unit tests: keeps each submitted job's server configuration
and runs nothing. The real federation is tests/federation's."""

import json
from pathlib import Path


class RecordingFlare:
    """Keeps each submitted job's server configuration; every site in `connected` is connected."""

    def __init__(self, connected=("site-1", "site-2", "site-3")):
        self.jobs, self.connected = [], list(connected)

    def connected_sites(self, timeout: float = 10) -> list[str]:
        return self.connected

    def open_session(self):
        return self

    def submit_job(self, folder):
        self.jobs.append(json.loads((Path(folder) / "app" / "config" / "config_fed_server.json").read_text()))
        return f"flare-{len(self.jobs)}"

"""Cancer Imaging Workbench: catalog, sandbox spawner, hub services, DICOM, widgets, federation.

In a notebook, `import imaging_workbench as workbench` and `workbench.release(...)` files results
in ~/outbox for release through the airlock (airlock/client.py), and
`workbench.dashboards.publish(...)` publishes a notebook as a dashboard (dashboards.py), and
`workbench.Tools().list()` lists the approved AI tools (tools/notebook.py)."""

from . import dashboards
from .airlock.client import release
from .tools.notebook import Tools

__version__ = "0.1.0"
__all__ = ["Tools", "dashboards", "release"]

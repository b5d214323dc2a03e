# JupyterHub configuration of the Cancer Imaging Workbench.
# Deployments change hub_config/workbench.yaml (or the file $WORKBENCH_SITE names), not this file;
# anything the deployment settings do not cover goes in a jupyterhub_config.d/*.py file, loaded last.
import os
from pathlib import Path

from imaging_workbench.hub.configurer import configure
from imaging_workbench.site import load_site

here = Path(__file__).parent
site = load_site(os.environ.get("WORKBENCH_SITE") or here / "workbench.yaml")
configure(c, site)  # noqa: F821 (c is given by JupyterHub)

for extra_dir in (here / "jupyterhub_config.d", os.environ.get("WORKBENCH_HUB_CONFIG_D")):
    if extra_dir and Path(extra_dir).is_dir():
        for extra in sorted(Path(extra_dir).glob("*.py")):
            load_subconfig(str(extra))  # noqa: F821

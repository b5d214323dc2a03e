# JupyterHub configuration of the Cancer Imaging Workbench.
# Deployments change hub_config/workbench.yaml (or the file $WORKBENCH_SETTINGS names; $WORKBENCH_SITE,
# its old name, is still read when it is unset), not this file;
# anything the deployment settings do not cover goes in a jupyterhub_config.d/*.py file, loaded last.
import os
from pathlib import Path

from imaging_workbench.deployment import load_settings, settings_file_from_env
from imaging_workbench.hub.configurer import configure

here = Path(__file__).parent
# The file $WORKBENCH_SETTINGS names, else the one $WORKBENCH_SITE (the old name) names, else ours.
settings = load_settings(settings_file_from_env() or here / "workbench.yaml")
configure(c, settings)  # noqa: F821 (c is given by JupyterHub)

for extra_dir in (here / "jupyterhub_config.d", os.environ.get("WORKBENCH_HUB_CONFIG_D")):
    if extra_dir and Path(extra_dir).is_dir():
        for extra in sorted(Path(extra_dir).glob("*.py")):
            load_subconfig(str(extra))  # noqa: F821

"""The approved algorithms' code: what each site computes and how the server combines it.

Each module has `site_run(params, task, data, state) -> dict` (a raw site result, filtered by
the site's privacy rules before it leaves) and a `Server` class (`task(round)`, `add(site,
result)`, `end_round(round)`, `final(out_dir) -> dict`).
"""

import importlib

MODULES = {
    "cohort-statistics": "statistics",
    "federated-training": "training",
    "federated-evaluation": "evaluation",
}


def load(algorithm_id: str):
    return importlib.import_module(f".{MODULES[algorithm_id]}", __name__)

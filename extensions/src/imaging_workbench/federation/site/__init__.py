"""Runs at each data-holding site, inside its FLARE client: the executor, the site's filters,
its own data, its privacy policy and its privacy-budget ledger. Nothing here trusts the hub
beyond the researcher's identity that a job carries."""

"""The hub side: sandbox spawner, login, revocation enforcement, and the site-file → traitlets mapping."""

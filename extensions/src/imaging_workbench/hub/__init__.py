"""The hub side: sandbox spawner, login, revocation enforcement, and the deployment settings → traitlets mapping."""

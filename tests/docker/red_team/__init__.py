"""Red team: from inside a sandbox, as its user (uid 1000) with its server's own token, try to get
out. Every attempt must be refused, and the sandboxes and the hub keep working after each test.

So that no attempt passes by testing nothing, each first runs against a twin that lacks the one
wall it tests, and must get through there: a container of the sandbox's image and user with the
sandbox's settings but one (`twin`), or alice's own sandbox holding a widened token.

The package runs a hub of its own (conftest.py) on its own network (`wbtest-red-sandbox`), apart from conftest's
`sandbox_hub`. No test sends a packet to an address that is not this machine's or its
containers': listeners are on the host's own addresses, routes given to twins lead only there.
"""

"""Red team 2 and 9: listeners on every address of the host, and routes out (the twins: the
host's network namespace, IPv6 on with a route, the firewall chain opened, docker's forwarding opened)."""

import json
import subprocess

import pytest

from imaging_workbench.hub.network import bridge_name

from ...waiting import wait_for
from ..sandboxes import python_in
from .tools import (
    BOX, FIREWALL, HOST_NETNS, IPV6_OFF, NOTES, Attempt, FirewallOpened, HostAddress, Listener, connect_from,
    give_route, host_addresses, judge, sandbox_ip,
)

pytestmark = pytest.mark.docker


def twin_wall(a: HostAddress) -> str:
    """The wall a twin lacks to reach `a`. Loopback and other links' link-local addresses are out of
    any network's reach, so their twin shares the host's network namespace. A sandbox reaches the
    host's other IPv4 addresses over its default route, where the firewall chain stops it; IPv6 is
    off in a sandbox, and no firewall rule covers it."""
    if a.scope == "host" or (a.scope == "link" and a.ifname != bridge_name(BOX.network)):
        return HOST_NETNS
    return IPV6_OFF if ":" in a.address else FIREWALL


class HostListeners:
    """A listener on every address of the host (`ip -j addr`) and on each wildcard address; each
    address is a target twice, at its own listener's port and at its family's wildcard listener's."""

    def __init__(self):
        self.skipped = []
        self.on = {}
        for a in host_addresses():
            # Other tests' containers come and go: their veths (not ours) could vanish mid-test.
            if a.ifname.startswith("veth") and a.master != bridge_name(BOX.network):
                self.skipped.append(f"{a.address} (another network's veth)")
            else:
                self.on[a] = Listener(a.address, a.ifname)
        self.anywhere = {4: Listener("0.0.0.0"), 6: Listener("::")}

    def targets(self, addresses, from_host_netns: bool = False) -> list[tuple]:
        """(key, address, port, interface) for each address: a sandbox reaches link-local
        addresses through its eth0, a twin in the host's network namespace through their own."""
        return [(f"{a.address} port {port}", a.address, port, a.ifname if from_host_netns else "eth0")
                for a in addresses for port in (self.on[a].port, self.anywhere[6 if ":" in a.address else 4].port)]

    def taken(self) -> dict:
        return {**{a: listener.accepted() for a, listener in self.on.items()},
                **{v: listener.accepted() for v, listener in self.anywhere.items()}}

    def close(self):
        for listener in [*self.on.values(), *self.anywhere.values()]:
            listener.sock.close()


def twins_connect(twin, listeners: HostListeners, bob_ip: str) -> dict:
    """Every target from the twin that lacks its wall; and a note if IPv6 needs no opening."""
    by_wall = {w: [a for a in listeners.on if twin_wall(a) == w] for w in {twin_wall(a) for a in listeners.on}}
    by_twin = connect_from(twin("host-netns", network_mode="host", network=None, dns=None),
                           [*listeners.targets(by_wall.get(HOST_NETNS, []), True), ("bob-server", bob_ip, 8888, "")])
    routed = twin("routed")
    give_route(routed)
    over_ipv6 = connect_from(routed, listeners.targets(by_wall.get(IPV6_OFF, [])))
    if over_ipv6 and all(result == "connected" for result in over_ipv6.values()):
        NOTES.append("IPv6: no ip6tables rule guards the host; a twin with IPv6 on reached the host's IPv6 listeners "
                     "(the bridge's link-local address too) with the sandbox firewall chain in place")
    with FirewallOpened(sandbox_ip(routed)):
        by_twin.update(over_ipv6, **connect_from(routed, listeners.targets(by_wall.get(FIREWALL, []))))
    return by_twin


def test_no_listener_on_any_host_address_is_reachable(alice, bob, twin):
    listeners = HostListeners()
    try:
        by_twin = twins_connect(twin, listeners, sandbox_ip(bob))
        taken_by_twins = listeners.taken()
        found = connect_from(alice, [*listeners.targets(listeners.on), ("bob-server", sandbox_ip(bob), 8888, "")])
        taken, still_there = listeners.taken(), {a.address for a in host_addresses()}
        attempts = []
        for a in listeners.on:
            keys = [key for key, *_ in listeners.targets([a])]
            if a.address not in still_there and not all(by_twin[k] == "connected" for k in keys):
                listeners.skipped.append(f"{a.address} (gone during the test)")
                continue
            attempts.append(Attempt(f"listeners: connect to {a.address} ({a.ifname})", twin_wall(a),
                                    all(by_twin[k] == "connected" for k in keys) and taken_by_twins[a] > 0,
                                    all(found[k].startswith("blocked") for k in keys) and taken[a] == taken_by_twins[a],
                                    f"sandbox {[found[k] for k in keys]}, twin {[by_twin[k] for k in keys]}"))
        attempts.append(Attempt("listeners: reach another user's server at its address", HOST_NETNS,
                                by_twin["bob-server"] == "connected", found["bob-server"].startswith("blocked"),
                                f"sandbox {found['bob-server']}, twin {by_twin['bob-server']}"))
        attempts.append(Attempt("listeners: connect to the wildcard listeners (0.0.0.0, ::)", "as each address",
                                taken_by_twins[4] > 0 and taken_by_twins[6] > 0,
                                (taken[4], taken[6]) == (taken_by_twins[4], taken_by_twins[6]),
                                f"taken from the twins {taken_by_twins[4]}, {taken_by_twins[6]}; "
                                f"in all {taken[4]}, {taken[6]}"))
        if listeners.skipped:
            NOTES.append(f"listeners: skipped {', '.join(listeners.skipped)}")
        judge(attempts)
    finally:
        listeners.close()


# ---- 9. a route out, an address beyond the link

ROUTES = r'''
import json
def rows(path):
    try:
        return [line.split() for line in open(path).read().splitlines()]
    except OSError:
        return []
zero = "0" * 32
print(json.dumps({
    "IPv4 default route": [r[0] for r in rows("/proc/net/route")[1:] if r[1] == "00000000"],
    # an IPv6 default route that is not the kernel's "unreachable" one (RTF_REJECT, 0x200)
    "IPv6 default route": [r[9] for r in rows("/proc/net/ipv6_route")
                           if r[0] == zero and r[1] == "00" and not int(r[8], 16) & 0x200],
    # if_inet6's scope: 0x10 host (loopback), 0x20 link; anything else reaches beyond the link
    "IPv6 address beyond link-local": [r[0] for r in rows("/proc/net/if_inet6") if int(r[3], 16) not in (0x10, 0x20)],
}))
'''


def routes_of(container) -> dict:
    code, out = python_in(container, ROUTES)
    assert code == 0, out
    return json.loads(out)


IPV6_ON = r'''
import ctypes, errno, json
def attempt():
    try:
        with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "w") as f:
            f.write("0")
        return "turned on"
    except OSError as e:
        return "refused: " + errno.errorcode.get(e.errno, type(e).__name__)
first = attempt()
if first != "turned on":  # /proc/sys is mounted read-only: make it writable, then again
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", b"/proc/sys", None, 32 | 4096, None) == 0:  # MS_REMOUNT | MS_BIND, not MS_RDONLY
        first = attempt()
print(json.dumps(first))
'''


def turn_ipv6_on(container, user: str) -> str:
    code, out = python_in(container, IPV6_ON, user=user)
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def routes(alice, twin) -> tuple[dict, dict]:
    """What alice's sandbox and a twin given routes and an address read of their routes and addresses."""
    routed = twin("routed")
    give_route(routed, global_address=True)
    return routes_of(alice), routes_of(routed)


def test_there_is_no_ipv6_beyond_the_link_and_no_turning_it_on(alice, routes, twin):
    found, by_twin = routes
    attempts = [Attempt(f"route: {what}", "IPv6, with a route and an address added from the host", bool(by_twin[what]),
                        not found[what], f"sandbox {found[what]}, twin {by_twin[what]}")
                for what in ("IPv6 default route", "IPv6 address beyond link-local")]
    net_admin = twin("net-admin", user="0", cap_add=["NET_ADMIN", "SYS_ADMIN"])
    by_twin = turn_ipv6_on(net_admin, "0")
    for who, user in (("as the sandbox user", "1000"), ("as root in the sandbox", "0")):
        answer = turn_ipv6_on(alice, user)
        attempts.append(Attempt(f"route: turn IPv6 on {who}", "root with NET_ADMIN (and SYS_ADMIN for /proc/sys)",
                                by_twin == "turned on", answer.startswith("refused"),
                                f"sandbox {answer}, twin {by_twin}"))
    judge(attempts)


def test_there_is_no_ipv4_default_route(routes):
    """Docker gives a container on an internal network one; the spawner deletes it."""
    found, by_twin = routes
    judge([Attempt("route: IPv4 default route", "a route added from the host", bool(by_twin["IPv4 default route"]),
                   not found["IPv4 default route"], f"sandbox {found['IPv4 default route']}")])


LISTEN_ONCE = r'''
import socket
with socket.create_server(("0.0.0.0", 8123)) as server:
    print("listening", flush=True)
    while True:
        server.accept()[0].close()
        print("accepted", flush=True)
'''


class ForwardingOpened:
    """docker's DOCKER-USER chain (first in FORWARD) lets two addresses reach each other, until exit."""

    def __init__(self, one: str, other: str):
        self.rules = [["-s", f"{one}/32", "-d", f"{other}/32", "-j", "ACCEPT"],
                      ["-s", f"{other}/32", "-d", f"{one}/32", "-j", "ACCEPT"]]

    def __enter__(self):
        for rule in self.rules:
            subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", "1", *rule], check=True)

    def __exit__(self, *exc):
        for rule in self.rules:
            subprocess.run(["iptables", "-w", "-D", "DOCKER-USER", *rule], check=True)


def test_the_default_route_forwards_nothing(docker, alice, twin):
    """Through its default route a sandbox would reach other networks; docker's isolation rules for
    an internal network drop what it forwards. The target is a container on docker's default
    bridge, on this machine: nothing is sent beyond it."""
    if not docker.networks.list(names=["bridge"]):
        pytest.skip("docker's default bridge network is off on this host: no other network to aim at")
    target = twin("other-network", network="bridge", dns=None, command=["python3", "-c", LISTEN_ONCE])
    wait_for(lambda: b"listening" in target.logs(), 30, what="the listener on docker's default bridge")
    address = target.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    forwarded = twin("forwarded")
    with ForwardingOpened(sandbox_ip(forwarded), address):
        by_twin = connect_from(forwarded, [("other", address, 8123, "")])["other"]
    taken_by_twin = target.logs().count(b"accepted")
    found = connect_from(alice, [("other", address, 8123, "")])["other"]
    judge([Attempt("route: reach a container on another network through the default route",
                   "docker's isolation of the internal network (DOCKER-USER lets the twin through)",
                   by_twin == "connected" and taken_by_twin == 1,
                   found.startswith("blocked") and target.logs().count(b"accepted") == taken_by_twin,
                   f"sandbox {found}, twin {by_twin}")])

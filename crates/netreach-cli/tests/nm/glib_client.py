#!/usr/bin/python3
"""A GLib application asking GNetworkMonitor for the state of the network; run with
GIO_USE_NETWORK_MONITOR=networkmanager it uses GLib's NetworkManager implementation. Prints one
JSON line when it starts (which implementation it got) and one per change of what it sees;
ends when standard input closes, or after a minute at most.

Used by crates/netreach-cli/tests/nm_compat.rs against `netreach serve --nm-compat` on a
private system bus (DBUS_SYSTEM_BUS_ADDRESS)."""

import json
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

monitor = Gio.NetworkMonitor.get_default()
loop = GLib.MainLoop()
last = None


def state():
    return {
        "available": monitor.get_network_available(),
        "connectivity": monitor.get_connectivity().value_nick,
        "metered": monitor.get_network_metered(),
    }


def report(*_args):
    global last
    now = state()
    if now != last:
        last = now
        print(json.dumps(now), flush=True)


print(json.dumps({"monitor": type(monitor).__gtype__.name}), flush=True)
report()
for prop in ("network-available", "connectivity", "network-metered"):
    monitor.connect("notify::" + prop, report)


def stdin_ready(_fd, condition):
    data = sys.stdin.buffer.read1(4096) if condition & GLib.IO_IN else b""
    if not data:
        loop.quit()
        return False
    return True


GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, stdin_ready)
GLib.timeout_add_seconds(60, loop.quit)
loop.run()

#!/usr/bin/python3
"""Helpers of crates/netreach-cli/tests/nm_compat.rs on the test's private system bus
(DBUS_SYSTEM_BUS_ADDRESS), with GLib's D-Bus client. One JSON line per answer.

  bus_tool.py own     owns org.freedesktop.NetworkManager, prints {"owner": UNIQUE_NAME}; then
                      for each line on standard input prints {"still_owner": BOOL}; ends when
                      standard input closes (at most a minute).
  bus_tool.py follow  reads, as Qt does, the device of each primary connection announced, from
                      inside the signal handler: {"primary": PATH, "device": {...} or
                      "error": NAME}; ends when standard input closes (at most a minute).
  bus_tool.py calls   asks the service what a client may ask, and what it must refuse, and
                      prints each answer or D-Bus error name: {"call": NAME, "ok": ..., "error": ...}.
"""

import json
import os
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NM = "org.freedesktop.NetworkManager"
PATH = "/org/freedesktop/NetworkManager"
PROPS = "org.freedesktop.DBus.Properties"

bus = Gio.DBusConnection.new_for_address_sync(
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None,
    None,
)


def call(dest, path, iface, method, args=None):
    try:
        reply = bus.call_sync(dest, path, iface, method, args, None, 0, 5000, None)
        return {"ok": reply.unpack()}
    except GLib.Error as e:
        return {"error": Gio.DBusError.get_remote_error(e) or e.message}


def owner():
    r = call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
             "GetNameOwner", GLib.Variant("(s)", (NM,)))
    return r.get("ok", [None])[0]


def own():
    # Flags 4: DBUS_NAME_FLAG_DO_NOT_QUEUE; no ALLOW_REPLACEMENT.
    r = call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
             "RequestName", GLib.Variant("(su)", (NM, 4)))
    assert r.get("ok") == (1,), r
    print(json.dumps({"owner": bus.get_unique_name()}), flush=True)
    for _line in sys.stdin:
        print(json.dumps({"still_owner": owner() == bus.get_unique_name()}), flush=True)


def calls():
    s = lambda *a: GLib.Variant("(" + "s" * len(a) + ")", a)  # noqa: E731
    primary = call(NM, PATH, PROPS, "Get", s(NM, "PrimaryConnection"))["ok"][0]
    devices = call(NM, primary, PROPS, "Get", s(NM + ".Connection.Active", "Devices"))
    device = devices["ok"][0][0]
    asks = {
        "get_all": (NM, PATH, PROPS, "GetAll", s(NM)),
        "get_state": (NM, PATH, PROPS, "Get", s(NM, "State")),
        "check_connectivity": (NM, PATH, NM, "CheckConnectivity", None),
        "active_get_all": (NM, primary, PROPS, "GetAll", s(NM + ".Connection.Active")),
        "device_get_all": (NM, device, PROPS, "GetAll", s(NM + ".Device")),
        "introspect_manager": (NM, PATH, "org.freedesktop.DBus.Introspectable", "Introspect", None),
        "introspect_active": (NM, primary, "org.freedesktop.DBus.Introspectable", "Introspect", None),
        "introspect_device": (NM, device, "org.freedesktop.DBus.Introspectable", "Introspect", None),
        "unknown_property": (NM, PATH, PROPS, "Get", s(NM, "WirelessEnabled")),
        "unknown_interface": (NM, PATH, PROPS, "GetAll", s("org.example.Nope")),
        "bad_interface_name": (NM, PATH, PROPS, "Get", s("not an interface", "State")),
        "wrong_arguments": (NM, PATH, PROPS, "Get", GLib.Variant("(u)", (7,))),
        "unknown_object": (NM, PATH + "/Settings", PROPS, "GetAll", s(NM + ".Settings")),
        "set_refused": (NM, PATH, PROPS, "Set", GLib.Variant("(ssv)", (NM, "State", GLib.Variant("u", 70)))),
        "unknown_method": (NM, PATH, NM, "Enable", GLib.Variant("(b)", (False,))),
    }
    for name, (dest, path, iface, method, args) in asks.items():
        r = call(dest, path, iface, method, args)
        r["call"] = name
        print(json.dumps(r, default=str), flush=True)
    # Flags 2 | 4: REPLACE_EXISTING, DO_NOT_QUEUE. The service did not allow replacement.
    r = call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
             "RequestName", GLib.Variant("(su)", (NM, 6)))
    r["call"] = "replace_attempt"
    print(json.dumps(r, default=str), flush=True)
    # The service is still there after all of it.
    r = call(NM, PATH, PROPS, "Get", s(NM, "Version"))
    r["call"] = "still_serving"
    print(json.dumps(r, default=str), flush=True)


def follow():
    def changed(_conn, _sender, _path, _iface, _signal, params):
        _iface_name, props, _invalidated = params.unpack()
        primary = props.get("PrimaryConnection")
        if primary is None or primary == "/":
            return
        line = {"primary": primary}
        devices = call(NM, primary, PROPS, "Get", GLib.Variant("(ss)", (NM + ".Connection.Active", "Devices")))
        if "ok" in devices and devices["ok"][0]:
            device = call(NM, devices["ok"][0][0], PROPS, "GetAll", GLib.Variant("(s)", (NM + ".Device",)))
            line.update({"device": device["ok"][0]} if "ok" in device else {"error": device["error"]})
        else:
            line["error"] = devices.get("error", "no devices")
        print(json.dumps(line), flush=True)

    bus.signal_subscribe(NM, PROPS, "PropertiesChanged", PATH, None, Gio.DBusSignalFlags.NONE, changed)
    print(json.dumps({"following": True}), flush=True)
    loop = GLib.MainLoop()
    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP,
                      lambda *_: (loop.quit(), False)[1] if not sys.stdin.buffer.read1(4096) else True)
    GLib.timeout_add_seconds(60, loop.quit)
    loop.run()


{"own": own, "calls": calls, "follow": follow}[sys.argv[1]]()

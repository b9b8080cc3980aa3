#!/usr/bin/python3
"""A Qt 6 application asking QNetworkInformation, through the "networkmanager" backend, for the
state of the network, as an unmodified application would. Prints one JSON line when it starts
(whether the backend loaded) and one per change of what it sees; ends when standard input
closes, or after a minute at most.

Used by crates/netreach-cli/tests/nm_compat.rs against `netreach serve --nm-compat` on a
private system bus (DBUS_SYSTEM_BUS_ADDRESS)."""

import json
import sys

from PyQt6.QtCore import QCoreApplication, QSocketNotifier, QTimer
from PyQt6.QtNetwork import QNetworkInformation

app = QCoreApplication(sys.argv)
loaded = QNetworkInformation.loadBackendByName("networkmanager")
info = QNetworkInformation.instance() if loaded else None
last = None


def state():
    return {
        "reachability": info.reachability().name,
        "portal": info.isBehindCaptivePortal(),
        "metered": info.isMetered(),
        "medium": info.transportMedium().name,
    }


def report(*_args):
    global last
    now = state()
    if now != last:
        last = now
        print(json.dumps(now), flush=True)


print(json.dumps({"backend": info.backendName() if info else None}), flush=True)
if info is not None:
    report()
    info.reachabilityChanged.connect(report)
    info.isBehindCaptivePortalChanged.connect(report)
    info.isMeteredChanged.connect(report)
    # Not transportMediumChanged: PyQt6 6.4 cannot connect to it. The medium changes with
    # the primary connection, which the lines above report.

stdin = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
stdin.activated.connect(lambda *_: app.quit() if not sys.stdin.buffer.read1(4096) else None)
QTimer.singleShot(60_000, app.quit)
sys.exit(app.exec())

// netreach_qt.h: Qt 6 classes over libnetreach, with the public API of Qt's private
// QNetworkStatusMonitor and QNetworkConnectionMonitor (qnetconmonitor_p.h), so a port from
// them changes only the names; plus what Qt's classes cannot say (reason, path, per-family
// level, verified state).
//
// Threads: an object is used from the thread that owns it. Its signals are emitted in that
// thread, from its event loop (a QSocketNotifier on libnetreach's descriptor): never from a
// library thread.
#ifndef NETREACH_QT_H
#define NETREACH_QT_H

#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtNetwork/QHostAddress>

#include <memory>

class NetReachConnectionMonitorPrivate;
class NetReachStatusMonitorPrivate;

// Is the path of one connection (a local address of this host, a remote address) still there?
// Rules: docs/reachability.md.
class NetReachConnectionMonitor : public QObject
{
    Q_OBJECT

public:
    NetReachConnectionMonitor();
    NetReachConnectionMonitor(const QHostAddress &local, const QHostAddress &remote = {});
    ~NetReachConnectionMonitor() override;

    // Watches local -> remote from now on (the old target is dropped only if the new one is
    // valid). False, with the monitor as it was, for a null, unspecified or unassigned local
    // address, a null or non-unicast remote, mixed families, while monitoring (call
    // stopMonitoring() first), or when netreach cannot start here (errorString() says why).
    bool setTargets(const QHostAddress &local, const QHostAddress &remote);
    // The target is reachable now (false without a target). Waits up to a second for the
    // first answer of a target just set.
    bool isReachable();

    // Starts emitting reachabilityChanged() on changes. False, doing nothing else, without
    // a valid target.
    bool startMonitoring();
    bool isMonitoring() const;
    void stopMonitoring();

    // False where netreach has no backend (it monitors Linux).
    static bool isEnabled();

    // netreach's additions: why the target is unreachable ("carrier_lost", as in
    // docs/reachability.md; empty while reachable), and its path while reachable
    // ("via 198.18.20.1 dev h0"); both as of the last change seen. errorString(): why the last
    // failed call failed.
    QString reason() const;
    QString path() const;
    QString errorString() const;

Q_SIGNALS:
    // Reachability flipped. Emitted in the owning thread.
    void reachabilityChanged(bool isOnline);
    // Reachability, its reason or its path changed (every change, also those that leave the
    // bool as it was). Emitted in the owning thread, after reachabilityChanged.
    void reachabilityDetailsChanged(bool isReachable, const QString &reason, const QString &path);

private:
    void drain();
    std::unique_ptr<NetReachConnectionMonitorPrivate> d;
    Q_DISABLE_COPY_MOVE(NetReachConnectionMonitor)
};

// Is this machine online? Rules: docs/connectivity.md.
class NetReachStatusMonitor : public QObject
{
    Q_OBJECT

public:
    // How far packets can get, lowest first.
    enum class Level { Disconnected, Local, Site, Internet };
    Q_ENUM(Level)
    // What the HTTP probes say (Unverified unless probing was asked for).
    enum class Verified { Unverified, None, Limited, Portal, Full };
    Q_ENUM(Verified)

    explicit NetReachStatusMonitor(QObject *parent = nullptr);
    ~NetReachStatusMonitor() override;

    // The overall level is internet (false while not monitoring).
    bool isNetworkAccessible();

    // Starts watching the network of this process's namespace. True when monitoring (also
    // if it already was); false, doing nothing else, when netreach cannot start here.
    bool start();
    void stop();
    bool isMonitoring() const;

    static bool isEnabled();

    // netreach's additions, as of now (Disconnected / empty / Unverified while not
    // monitoring).
    Level level() const;
    Level ipv4Level() const;
    Level ipv6Level() const;
    QString primaryInterface() const;
    bool isMetered() const;
    Verified verifiedState() const;
    QString errorString() const;

Q_SIGNALS:
    // The overall level became, or stopped being, internet. Emitted in the owning thread.
    void onlineStateChanged(bool isOnline);
    // Any change: a level, the primary interface, its medium or metering, a probe verdict.
    void statusChanged();

private:
    void drain();
    std::unique_ptr<NetReachStatusMonitorPrivate> d;
    Q_DISABLE_COPY_MOVE(NetReachStatusMonitor)
};

#endif // NETREACH_QT_H

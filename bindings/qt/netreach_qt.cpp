// The Qt classes: a translation of libnetreach's handles into QObjects. No rule lives here:
// validity, reachability and online-ness are the library's answers.
#include "netreach_qt.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QSocketNotifier>

#include <netreach.h>

Q_LOGGING_CATEGORY(lcNetReach, "netreach")

namespace {

QString lastError()
{
    return QString::fromUtf8(netreach_last_error());
}

QString str(const char *s)
{
    return s ? QString::fromUtf8(s) : QString();
}

// An address as libnetreach reads it: "fe80::1%eth0" carries the interface.
QByteArray text(const QHostAddress &a)
{
    return a.toString().toUtf8();
}

} // namespace

class NetReachConnectionMonitorPrivate
{
public:
    netreach_connection_monitor *conn = nullptr;
    QSocketNotifier *notifier = nullptr;
    bool hasTarget = false;
    uint64_t target = 0;
    bool reachable = false;
    QString reason, path, error;

    // The library's monitor, made on first use; false (with `error`) if it cannot start.
    bool ensure()
    {
        if (conn)
            return true;
        netreach_monitor *m = nullptr;
        if (netreach_monitor_new(nullptr, &m) != NETREACH_RESULT_OK) {
            error = lastError();
            return false;
        }
        netreach_result r = netreach_connection_monitor_new(m, &conn);
        if (r != NETREACH_RESULT_OK)
            error = lastError();
        // The connection monitor keeps the model alive on its own.
        netreach_monitor_free(m);
        return r == NETREACH_RESULT_OK;
    }

    void take(const netreach_reachability &r)
    {
        reachable = r.state == NETREACH_STATE_REACHABLE;
        reason = str(r.reason_name);
        path = str(r.path);
    }

    ~NetReachConnectionMonitorPrivate()
    {
        delete notifier;
        netreach_connection_monitor_free(conn);
    }
};

NetReachConnectionMonitor::NetReachConnectionMonitor()
    : d(std::make_unique<NetReachConnectionMonitorPrivate>())
{
}

NetReachConnectionMonitor::NetReachConnectionMonitor(const QHostAddress &local,
                                                     const QHostAddress &remote)
    : NetReachConnectionMonitor()
{
    setTargets(local, remote);
}

NetReachConnectionMonitor::~NetReachConnectionMonitor() = default;

bool NetReachConnectionMonitor::setTargets(const QHostAddress &local, const QHostAddress &remote)
{
    if (isMonitoring()) {
        d->error = QStringLiteral("the monitor is active; call stopMonitoring() first");
        qCWarning(lcNetReach) << d->error;
        return false;
    }
    if (local.isNull() || remote.isNull()) {
        d->error = QStringLiteral("a null address cannot be a target");
        qCWarning(lcNetReach) << d->error;
        return false;
    }
    if (!d->ensure()) {
        qCWarning(lcNetReach) << "netreach cannot start:" << d->error;
        return false;
    }
    uint64_t id = 0;
    if (netreach_connection_monitor_add_target(d->conn, text(local).constData(),
                                               text(remote).constData(), nullptr, &id)
        != NETREACH_RESULT_OK) {
        d->error = lastError();
        qCWarning(lcNetReach) << "invalid target:" << d->error;
        return false;
    }
    if (d->hasTarget)
        netreach_connection_monitor_remove_target(d->conn, d->target);
    d->hasTarget = true;
    d->target = id;
    d->reachable = false;
    d->reason.clear();
    d->path.clear();
    return true;
}

bool NetReachConnectionMonitor::isReachable()
{
    if (!d->hasTarget)
        return false;
    netreach_reachability r;
    if (netreach_connection_monitor_reachability(d->conn, d->target, 1000, &r)
        != NETREACH_RESULT_OK) {
        d->error = lastError();
        return false;
    }
    d->take(r);
    return d->reachable;
}

bool NetReachConnectionMonitor::startMonitoring()
{
    if (isMonitoring())
        return true;
    if (!d->hasTarget) {
        d->error = QStringLiteral("no valid target: call setTargets() first");
        qCWarning(lcNetReach) << d->error;
        return false;
    }
    int fd = -1;
    if (netreach_connection_monitor_fd(d->conn, &fd) != NETREACH_RESULT_OK) {
        d->error = lastError();
        return false;
    }
    // What happened before is the state now: drop the old events, then read it.
    netreach_connection_event ev;
    while (netreach_connection_monitor_next_event(d->conn, &ev) == NETREACH_RESULT_OK) {
    }
    isReachable();
    d->notifier = new QSocketNotifier(fd, QSocketNotifier::Read, this);
    connect(d->notifier, &QSocketNotifier::activated, this, &NetReachConnectionMonitor::drain);
    return true;
}

bool NetReachConnectionMonitor::isMonitoring() const
{
    return d->notifier != nullptr;
}

void NetReachConnectionMonitor::stopMonitoring()
{
    delete d->notifier;
    d->notifier = nullptr;
}

bool NetReachConnectionMonitor::isEnabled()
{
    return netreach_is_supported();
}

QString NetReachConnectionMonitor::reason() const
{
    return d->reason;
}

QString NetReachConnectionMonitor::path() const
{
    return d->path;
}

QString NetReachConnectionMonitor::errorString() const
{
    return d->error;
}

void NetReachConnectionMonitor::drain()
{
    netreach_connection_event ev;
    while (d->notifier) {
        netreach_result r = netreach_connection_monitor_next_event(d->conn, &ev);
        if (r != NETREACH_RESULT_OK) {
            if (r != NETREACH_RESULT_NO_EVENT) {
                d->error = lastError();
                qCWarning(lcNetReach) << "stopped:" << d->error;
                stopMonitoring();
            }
            return;
        }
        const bool was = d->reachable;
        if (ev.kind == NETREACH_CONNECTION_EVENT_KIND_CHANGED && ev.target == d->target) {
            d->take(ev.reachability);
        } else if (ev.kind == NETREACH_CONNECTION_EVENT_KIND_LAGGED) {
            isReachable();
        } else if (ev.kind == NETREACH_CONNECTION_EVENT_KIND_STOPPED) {
            d->error = QStringLiteral("the monitor has stopped");
            d->reachable = false;
            d->reason = QStringLiteral("stopped");
            d->path.clear();
            stopMonitoring();
        } else {
            continue;
        }
        if (was != d->reachable)
            Q_EMIT reachabilityChanged(d->reachable);
        Q_EMIT reachabilityDetailsChanged(d->reachable, d->reason, d->path);
    }
}

class NetReachStatusMonitorPrivate
{
public:
    netreach_status_monitor *status = nullptr;
    QSocketNotifier *notifier = nullptr;
    bool online = false;
    NetReachStatusMonitor::Level overall = NetReachStatusMonitor::Level::Disconnected;
    NetReachStatusMonitor::Level ipv4 = NetReachStatusMonitor::Level::Disconnected;
    NetReachStatusMonitor::Level ipv6 = NetReachStatusMonitor::Level::Disconnected;
    NetReachStatusMonitor::Verified verified = NetReachStatusMonitor::Verified::Unverified;
    QString primary, error;
    bool metered = false;

    void take(const netreach_status &s)
    {
        online = s.online;
        overall = NetReachStatusMonitor::Level(s.overall);
        ipv4 = NetReachStatusMonitor::Level(s.ipv4);
        ipv6 = NetReachStatusMonitor::Level(s.ipv6);
        verified = NetReachStatusMonitor::Verified(s.verified);
        primary = str(s.primary_name);
        metered = s.metered;
    }

    void clear() { take(netreach_status{}); }

    ~NetReachStatusMonitorPrivate()
    {
        delete notifier;
        netreach_status_monitor_free(status);
    }
};

NetReachStatusMonitor::NetReachStatusMonitor(QObject *parent)
    : QObject(parent), d(std::make_unique<NetReachStatusMonitorPrivate>())
{
}

NetReachStatusMonitor::~NetReachStatusMonitor() = default;

bool NetReachStatusMonitor::isNetworkAccessible()
{
    if (!isMonitoring())
        return false;
    netreach_status s;
    if (netreach_status_monitor_status(d->status, &s) != NETREACH_RESULT_OK) {
        d->error = lastError();
        return false;
    }
    return s.online;
}

bool NetReachStatusMonitor::start()
{
    if (isMonitoring())
        return true;
    netreach_monitor *m = nullptr;
    if (netreach_monitor_new(nullptr, &m) != NETREACH_RESULT_OK) {
        d->error = lastError();
        qCWarning(lcNetReach) << "netreach cannot start:" << d->error;
        return false;
    }
    netreach_status_monitor *status = nullptr;
    const netreach_result r = netreach_status_monitor_new(m, &status);
    netreach_monitor_free(m);
    int fd = -1;
    netreach_status s;
    if (r != NETREACH_RESULT_OK || netreach_status_monitor_fd(status, &fd) != NETREACH_RESULT_OK
        || netreach_status_monitor_status(status, &s) != NETREACH_RESULT_OK) {
        d->error = lastError();
        qCWarning(lcNetReach) << "netreach cannot start:" << d->error;
        netreach_status_monitor_free(status);
        return false;
    }
    d->status = status;
    d->take(s);
    d->notifier = new QSocketNotifier(fd, QSocketNotifier::Read, this);
    connect(d->notifier, &QSocketNotifier::activated, this, &NetReachStatusMonitor::drain);
    return true;
}

void NetReachStatusMonitor::stop()
{
    delete d->notifier;
    d->notifier = nullptr;
    netreach_status_monitor_free(d->status);
    d->status = nullptr;
    d->clear();
}

bool NetReachStatusMonitor::isMonitoring() const
{
    return d->status != nullptr;
}

bool NetReachStatusMonitor::isEnabled()
{
    return netreach_is_supported();
}

NetReachStatusMonitor::Level NetReachStatusMonitor::level() const
{
    return d->overall;
}

NetReachStatusMonitor::Level NetReachStatusMonitor::ipv4Level() const
{
    return d->ipv4;
}

NetReachStatusMonitor::Level NetReachStatusMonitor::ipv6Level() const
{
    return d->ipv6;
}

QString NetReachStatusMonitor::primaryInterface() const
{
    return d->primary;
}

bool NetReachStatusMonitor::isMetered() const
{
    return d->metered;
}

NetReachStatusMonitor::Verified NetReachStatusMonitor::verifiedState() const
{
    return d->verified;
}

QString NetReachStatusMonitor::errorString() const
{
    return d->error;
}

void NetReachStatusMonitor::drain()
{
    netreach_status_event ev;
    while (d->status) {
        const netreach_result r = netreach_status_monitor_next_event(d->status, &ev);
        if (r != NETREACH_RESULT_OK) {
            if (r != NETREACH_RESULT_NO_EVENT) {
                d->error = lastError();
                stop();
            }
            return;
        }
        const bool was = d->online;
        d->take(ev.status);
        if (ev.kind == NETREACH_STATUS_EVENT_KIND_STOPPED) {
            d->error = QStringLiteral("the monitor has stopped");
            stop();
        }
        if (was != d->online)
            Q_EMIT onlineStateChanged(d->online);
        Q_EMIT statusChanged();
    }
}

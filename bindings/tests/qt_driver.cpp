// The Qt test program: NetReachStatusMonitor and NetReachConnectionMonitor in a plain
// QCoreApplication, built with find_package(NetReach). Commands come one per line on standard
// input (a QSocketNotifier), every signal is printed as a line with the thread it came in;
// the scenario is the Rust test's (crates/netreach-ffi/tests/programs.rs).
//
// Commands: connect ADDR PORT (a real QTcpSocket), watch (a connection monitor on it),
// badstart (a monitor without a target), quit.
#include <QtCore/QCoreApplication>
#include <QtCore/QSocketNotifier>
#include <QtCore/QThread>
#include <QtNetwork/QTcpSocket>

#include <netreach_qt.h>

#include <cstdio>
#include <unistd.h>

static void say(const QString &line)
{
    std::printf("%s\n", line.toUtf8().constData());
    std::fflush(stdout);
}

static QString where()
{
    return QThread::currentThread() == QCoreApplication::instance()->thread()
        ? QStringLiteral("thread=main")
        : QStringLiteral("thread=OTHER");
}

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    say(QStringLiteral("hello enabled=%1").arg(NetReachStatusMonitor::isEnabled()));

    NetReachStatusMonitor status;
    QObject::connect(&status, &NetReachStatusMonitor::onlineStateChanged, [&](bool online) {
        say(QStringLiteral("onlineStateChanged %1 %2").arg(online).arg(where()));
    });
    const bool started = status.start();
    say(QStringLiteral("status started=%1 online=%2 level=%3 ipv4=%4 primary=%5 verified=%6")
            .arg(started)
            .arg(status.isNetworkAccessible())
            .arg(int(status.level()))
            .arg(int(status.ipv4Level()))
            .arg(status.primaryInterface())
            .arg(int(status.verifiedState())));

    QTcpSocket socket;
    NetReachConnectionMonitor *monitor = nullptr;
    QObject::connect(&socket, &QTcpSocket::connected, [&] {
        say(QStringLiteral("connected %1 %2")
                .arg(socket.localAddress().toString(), socket.peerAddress().toString()));
    });
    QObject::connect(&socket, &QTcpSocket::errorOccurred,
                     [&] { say(QStringLiteral("socket-error %1").arg(socket.errorString())); });

    auto command = [&](const QString &line) {
        const QStringList w = line.split(u' ', Qt::SkipEmptyParts);
        if (w.isEmpty())
            return;
        if (w[0] == u"quit") {
            app.quit();
        } else if (w[0] == u"connect" && w.size() == 3) {
            socket.connectToHost(QHostAddress(w[1]), w[2].toUShort());
        } else if (w[0] == u"watch") {
            delete monitor;
            monitor = new NetReachConnectionMonitor;
            // Invalid targets: refused, and the monitor stays as it was.
            const bool unspecified = monitor->setTargets(QHostAddress::AnyIPv4, socket.peerAddress());
            const bool null = monitor->setTargets(QHostAddress(), socket.peerAddress());
            const bool ok = monitor->setTargets(socket.localAddress(), socket.peerAddress());
            const bool mismatch = monitor->setTargets(QHostAddress::LocalHostIPv6, socket.peerAddress());
            QObject::connect(monitor, &NetReachConnectionMonitor::reachabilityChanged, [&](bool r) {
                say(QStringLiteral("reachabilityChanged %1 %2").arg(r).arg(where()));
            });
            QObject::connect(monitor, &NetReachConnectionMonitor::reachabilityDetailsChanged,
                             [&](bool r, const QString &reason, const QString &path) {
                                 say(QStringLiteral("details %1 reason=%2 path=%3 %4")
                                         .arg(r)
                                         .arg(reason.isEmpty() ? u"-"_qs : reason)
                                         .arg(path.isEmpty() ? u"-"_qs : path)
                                         .arg(where()));
                             });
            const bool monitoring = monitor->startMonitoring();
            const bool again = monitor->setTargets(socket.localAddress(), socket.peerAddress());
            say(QStringLiteral("watch unspecified=%1 null=%2 ok=%3 mismatch=%4 monitoring=%5 "
                               "while-monitoring=%6 reachable=%7 path=%8")
                    .arg(unspecified)
                    .arg(null)
                    .arg(ok)
                    .arg(mismatch)
                    .arg(monitoring && monitor->isMonitoring())
                    .arg(again)
                    .arg(monitor->isReachable())
                    .arg(monitor->path()));
        } else if (w[0] == u"badstart") {
            NetReachConnectionMonitor none;
            const bool start = none.startMonitoring();
            NetReachConnectionMonitor bad(QHostAddress(u"198.18.254.254"_qs),
                                          QHostAddress(u"198.18.254.1"_qs));
            const bool badStart = bad.startMonitoring();
            say(QStringLiteral("badstart start=%1 monitoring=%2 reachable=%3 "
                               "unassigned-start=%4 unassigned-monitoring=%5 error=%6")
                    .arg(start)
                    .arg(none.isMonitoring())
                    .arg(none.isReachable())
                    .arg(badStart)
                    .arg(bad.isMonitoring())
                    .arg(bad.errorString().isEmpty() ? u"-"_qs : u"yes"_qs));
        } else {
            say(QStringLiteral("error unknown command %1").arg(line));
        }
    };

    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QByteArray buffer;
    QObject::connect(&input, &QSocketNotifier::activated, [&] {
        char chunk[512];
        const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (n <= 0) {
            app.quit();
            return;
        }
        buffer.append(chunk, n);
        qsizetype nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
            const QString line = QString::fromUtf8(buffer.left(nl));
            buffer.remove(0, nl + 1);
            command(line);
        }
    });

    const int rc = app.exec();
    delete monitor;
    say(QStringLiteral("bye"));
    return rc;
}

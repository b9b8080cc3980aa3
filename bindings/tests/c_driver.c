/* The C test program: libnetreach driven from its installed header and library, one command
 * per line on standard input, one answer per line on standard output, and every event as a
 * line of its own as it is drained from the descriptors in a poll(2) loop. The scenario (which
 * changes to make, which reasons to expect) is the Rust test's, crates/netreach-ffi/tests/
 * programs.rs; this program only speaks the API, and runs under Valgrind there.
 *
 * Commands:
 *   misuse              NULL pointers, dead handles, double frees, calls after a failed start
 *   start [NETNS]       a monitor (NULL namespace: this process's), a status and a connection
 *                       monitor on it; a failure leaves everything as it was
 *   probe URL           the status monitor replaced by one that probes URL
 *   status              the status now
 *   add LOCAL REMOTE [IF]   watch a pair          connect ADDR PORT   watch a TCP connection
 *   remove ID | state ID | len
 *   hold                stop draining events      wait-pending   until both descriptors are
 *                                                                readable (events pending)
 *   free                free every handle (with whatever is pending)
 *   quit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netreach.h>

static netreach_status_monitor *status;
static netreach_connection_monitor *conn;
static int holding;
static int sockets[64];
static int nsockets;

static const char *level(netreach_level l)
{
    switch (l) {
    case NETREACH_LEVEL_DISCONNECTED: return "disconnected";
    case NETREACH_LEVEL_LOCAL: return "local";
    case NETREACH_LEVEL_SITE: return "site";
    case NETREACH_LEVEL_INTERNET: return "internet";
    }
    return "?";
}

static const char *state(netreach_state s)
{
    switch (s) {
    case NETREACH_STATE_UNKNOWN: return "unknown";
    case NETREACH_STATE_REACHABLE: return "reachable";
    case NETREACH_STATE_UNREACHABLE: return "unreachable";
    }
    return "?";
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

static void error_line(netreach_result r)
{
    printf("error %s %s\n", netreach_result_name(r), netreach_last_error());
}

static void print_status(const char *what, const netreach_status *s)
{
    printf("%s online=%d overall=%s ipv4=%s ipv6=%s primary=%s medium=%d metered=%d verified=%d\n",
           what, s->online, level(s->overall), level(s->ipv4), level(s->ipv6),
           or_dash(s->primary_name), (int)s->medium, s->metered, (int)s->verified);
}

static void print_reach(const char *what, uint64_t id, const netreach_reachability *r)
{
    printf("%s %llu %s reason=%s iface=%s path=%s route_type=%s\n", what,
           (unsigned long long)id, state(r->state), or_dash(r->reason_name),
           or_dash(r->interface_name), r->path ? r->path : "-", or_dash(r->route_type));
}

static void drain(void)
{
    netreach_status_event se;
    netreach_result r;
    while (status && (r = netreach_status_monitor_next_event(status, &se)) == NETREACH_RESULT_OK) {
        char what[64];
        snprintf(what, sizeof what, "event status kind=%d", (int)se.kind);
        print_status(what, &se.status);
    }
    netreach_connection_event ce;
    while (conn && (r = netreach_connection_monitor_next_event(conn, &ce)) == NETREACH_RESULT_OK) {
        if (ce.kind != NETREACH_CONNECTION_EVENT_KIND_CHANGED) {
            printf("event conn kind=%d\n", (int)ce.kind);
            continue;
        }
        print_reach("event conn", ce.target, &ce.reachability);
    }
    fflush(stdout);
}

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("misuse FAILED line %d: %s (%s)\n", __LINE__, #cond, netreach_last_error()); \
            return;                                                                          \
        }                                                                                    \
        checks++;                                                                            \
    } while (0)

static void misuse(void)
{
    int checks = 0;
    netreach_monitor *m = NULL;
    /* A failed start: nothing is made, and what is built on it is refused. */
    CHECK(netreach_monitor_new("nrt-ffi-missing-ns", &m) == NETREACH_RESULT_NAMESPACE_NOT_FOUND);
    CHECK(m == NULL);
    CHECK(strstr(netreach_last_error(), "nrt-ffi-missing-ns") != NULL);
    netreach_status_monitor *s = NULL;
    CHECK(netreach_status_monitor_new(m, &s) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(s == NULL);
    netreach_connection_monitor *c = NULL;
    CHECK(netreach_connection_monitor_new(m, &c) == NETREACH_RESULT_NULL_PARAMETER);
    uint64_t id = 77;
    CHECK(netreach_connection_monitor_add_target(c, "198.18.0.1", "198.18.0.2", NULL, &id)
          == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(id == 77);
    CHECK(netreach_monitor_new("bad/name", &m) == NETREACH_RESULT_INVALID_NAMESPACE);
    CHECK(netreach_monitor_new(NULL, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    /* NULL out-parameters and arguments. */
    CHECK(netreach_monitor_new(NULL, &m) == NETREACH_RESULT_OK);
    CHECK(netreach_status_monitor_new(m, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_status_monitor_new(m, &s) == NETREACH_RESULT_OK);
    CHECK(netreach_connection_monitor_new(m, &c) == NETREACH_RESULT_OK);
    CHECK(netreach_status_monitor_status(s, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_status_monitor_fd(s, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_status_monitor_next_event(s, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_connection_monitor_next_event(c, NULL) == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_connection_monitor_add_target(c, NULL, "::1", NULL, &id)
          == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_connection_monitor_add_target(c, "::1", "::1", NULL, NULL)
          == NETREACH_RESULT_NULL_PARAMETER);
    CHECK(netreach_connection_monitor_add_target(c, "::1", "nonsense", NULL, &id)
          == NETREACH_RESULT_INVALID_ADDRESS);
    CHECK(netreach_connection_monitor_add_target(c, "::", "::1", NULL, &id)
          == NETREACH_RESULT_UNSPECIFIED_LOCAL);
    CHECK(netreach_connection_monitor_add_target(c, "::1", "127.0.0.1", NULL, &id)
          == NETREACH_RESULT_FAMILY_MISMATCH);
    CHECK(netreach_connection_monitor_add_target(c, "::1", "::1", "nrt-nosuch0", &id)
          == NETREACH_RESULT_UNKNOWN_INTERFACE);
    CHECK(id == 77);
    size_t len = 9;
    CHECK(netreach_connection_monitor_len(c, &len) == NETREACH_RESULT_OK && len == 0);
    CHECK(netreach_connection_monitor_remove_target(c, 5) == NETREACH_RESULT_UNKNOWN_TARGET);
    /* Mixed-up handles. */
    CHECK(netreach_status_monitor_free((netreach_status_monitor *)c)
          == NETREACH_RESULT_INVALID_HANDLE);
    CHECK(netreach_connection_monitor_free((netreach_connection_monitor *)m)
          == NETREACH_RESULT_INVALID_HANDLE);
    /* Double frees and use after free are refused. */
    CHECK(netreach_monitor_free(m) == NETREACH_RESULT_OK);
    CHECK(netreach_monitor_free(m) == NETREACH_RESULT_INVALID_HANDLE);
    CHECK(netreach_status_monitor_free(s) == NETREACH_RESULT_OK);
    CHECK(netreach_status_monitor_free(s) == NETREACH_RESULT_INVALID_HANDLE);
    netreach_status st;
    CHECK(netreach_status_monitor_status(s, &st) == NETREACH_RESULT_INVALID_HANDLE);
    CHECK(netreach_connection_monitor_free(c) == NETREACH_RESULT_OK);
    CHECK(netreach_connection_monitor_free(c) == NETREACH_RESULT_INVALID_HANDLE);
    CHECK(netreach_monitor_free(NULL) == NETREACH_RESULT_OK);
    CHECK(strcmp(netreach_result_name(9999), "NETREACH_RESULT_UNKNOWN") == 0);
    CHECK(strcmp(netreach_result_name(NETREACH_RESULT_BUSY), "NETREACH_RESULT_BUSY") == 0);
    CHECK(netreach_is_supported());
    printf("misuse ok %d\n", checks);
}

static void start(const char *ns)
{
    netreach_monitor *m = NULL;
    netreach_result r = netreach_monitor_new(ns, &m);
    if (r != NETREACH_RESULT_OK) {
        error_line(r);
        return;
    }
    netreach_status_monitor *s = NULL;
    netreach_connection_monitor *c = NULL;
    if ((r = netreach_status_monitor_new(m, &s)) != NETREACH_RESULT_OK
        || (r = netreach_connection_monitor_new(m, &c)) != NETREACH_RESULT_OK) {
        error_line(r);
        netreach_status_monitor_free(s);
        netreach_monitor_free(m);
        return;
    }
    /* The status and connection monitors keep the model alive. */
    netreach_monitor_free(m);
    netreach_status_monitor_free(status);
    netreach_connection_monitor_free(conn);
    status = s;
    conn = c;
    printf("started\n");
}

static void probe(const char *url)
{
    netreach_monitor *m = NULL;
    netreach_status_monitor *s = NULL;
    netreach_result r = netreach_monitor_new(NULL, &m);
    if (r == NETREACH_RESULT_OK)
        r = netreach_status_monitor_new_probing(m, url, 5000, &s);
    netreach_monitor_free(m);
    if (r != NETREACH_RESULT_OK) {
        error_line(r);
        return;
    }
    netreach_status_monitor_free(status);
    status = s;
    printf("probing\n");
}

static void add(char *args)
{
    char *local = strtok(args, " "), *remote = strtok(NULL, " "), *iface = strtok(NULL, " ");
    uint64_t id = 0;
    netreach_result r = netreach_connection_monitor_add_target(conn, local, remote, iface, &id);
    if (r != NETREACH_RESULT_OK) {
        error_line(r);
        return;
    }
    printf("added %llu\n", (unsigned long long)id);
}

static void connect_to(char *args)
{
    char *addr = strtok(args, " "), *port = strtok(NULL, " ");
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (!addr || !port || getaddrinfo(addr, port, &hints, &ai) != 0) {
        printf("error connect bad address\n");
        return;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 || nsockets == 64) {
        printf("error connect %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return;
    }
    freeaddrinfo(ai);
    sockets[nsockets++] = fd;
    uint64_t id = 0;
    netreach_result r = netreach_connection_monitor_add_socket(conn, fd, &id);
    if (r != NETREACH_RESULT_OK) {
        error_line(r);
        return;
    }
    printf("added %llu\n", (unsigned long long)id);
}

static void free_all(void)
{
    netreach_status_monitor_free(status);
    netreach_connection_monitor_free(conn);
    status = NULL;
    conn = NULL;
}

static void wait_pending(void)
{
    int sfd = -1, cfd = -1;
    if (netreach_status_monitor_fd(status, &sfd) != NETREACH_RESULT_OK
        || netreach_connection_monitor_fd(conn, &cfd) != NETREACH_RESULT_OK) {
        printf("error wait-pending %s\n", netreach_last_error());
        return;
    }
    /* Each stays readable while events are pending (nothing drains them now): wait for
     * one, then the other, 20 s at most each. */
    int ready = 0;
    for (int i = 0; i < 2; i++) {
        struct pollfd p = {.fd = i ? cfd : sfd, .events = POLLIN};
        ready += poll(&p, 1, 20000) == 1;
    }
    printf(ready == 2 ? "pending\n" : "error wait-pending timed out\n");
}

static int command(char *line)
{
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    netreach_result r;
    if (!strcmp(line, "quit")) {
        return 0;
    } else if (!strcmp(line, "misuse")) {
        misuse();
    } else if (!strcmp(line, "start")) {
        start(arg);
    } else if (!strcmp(line, "probe") && arg) {
        probe(arg);
    } else if (!strcmp(line, "status")) {
        netreach_status s;
        if ((r = netreach_status_monitor_status(status, &s)) != NETREACH_RESULT_OK)
            error_line(r);
        else
            print_status("status", &s);
    } else if (!strcmp(line, "add") && arg) {
        add(arg);
    } else if (!strcmp(line, "connect") && arg) {
        connect_to(arg);
    } else if (!strcmp(line, "remove") && arg) {
        uint64_t id = strtoull(arg, NULL, 10);
        if ((r = netreach_connection_monitor_remove_target(conn, id)) != NETREACH_RESULT_OK)
            error_line(r);
        else
            printf("removed %llu\n", (unsigned long long)id);
    } else if (!strcmp(line, "state") && arg) {
        uint64_t id = strtoull(arg, NULL, 10);
        netreach_reachability reach;
        if ((r = netreach_connection_monitor_reachability(conn, id, 20000, &reach))
            != NETREACH_RESULT_OK)
            error_line(r);
        else
            print_reach("state", id, &reach);
    } else if (!strcmp(line, "len")) {
        size_t len = 0;
        if ((r = netreach_connection_monitor_len(conn, &len)) != NETREACH_RESULT_OK)
            error_line(r);
        else
            printf("len %zu\n", len);
    } else if (!strcmp(line, "hold")) {
        holding = 1;
        printf("holding\n");
    } else if (!strcmp(line, "wait-pending")) {
        wait_pending();
    } else if (!strcmp(line, "free")) {
        free_all();
        printf("freed\n");
    } else {
        printf("error unknown command %s\n", line);
    }
    fflush(stdout);
    return 1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("hello %s\n", netreach_version());
    char line[512];
    size_t have = 0;
    for (;;) {
        struct pollfd p[3] = {{.fd = 0, .events = POLLIN}, {.fd = -1}, {.fd = -1}};
        if (!holding) {
            if (status)
                netreach_status_monitor_fd(status, &p[1].fd), p[1].events = POLLIN;
            if (conn)
                netreach_connection_monitor_fd(conn, &p[2].fd), p[2].events = POLLIN;
        }
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents || p[2].revents)
            drain();
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = read(0, line + have, sizeof line - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        line[have] = '\0';
        char *nl;
        int go = 1;
        while (go && (nl = strchr(line, '\n'))) {
            *nl = '\0';
            go = command(line);
            size_t rest = have - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            have = rest;
        }
        if (!go)
            break;
        if (have == sizeof line - 1)
            have = 0;
    }
    free_all();
    for (int i = 0; i < nsockets; i++)
        close(sockets[i]);
    printf("bye\n");
    return 0;
}

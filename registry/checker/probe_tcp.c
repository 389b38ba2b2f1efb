/*
 * probe_tcp.c: TCP connect checks. A check is a non-blocking connect() whose socket waits in
 * the engine's epoll set (its epoll data is the target, registered one-shot) and on the
 * deadline heap; it succeeds when the socket becomes writable without an error before
 * timeout_ms. An errno that says the machine, not the target, failed (out of descriptors,
 * buffers or ports) is a local error, not a verdict.
 *
 * What goes on the wire for a listening target is SYN, SYN-ACK, RST: the socket is in delayed
 * ACK mode (TCP_QUICKACK 0) before connect(), so the kernel holds back the handshake's last
 * ACK, and it is closed with SO_LINGER 0, which sends a reset and keeps no TIME_WAIT. The
 * target's kernel drops the half-open request on the reset: no connection is ever queued for
 * its accept(), so a check costs the backend no accept/close and costs this process neither
 * the final ACK nor the backend's new socket, which loopback processes in the connect() that
 * sent the SYN. The verdict is the same as with a full handshake (a SYN-ACK came back in
 * time). HTTP checks keep the full handshake (probe_http.c): they send a request at once.
 *
 * Syscalls per passing check: socket, setsockopt x2, connect, epoll_ctl(ADD), close. close()
 * takes the socket out of the epoll set (nothing else holds the descriptor), so the event path
 * makes no EPOLL_CTL_DEL, and it reads SO_ERROR only when the event reports an error.
 *
 * Threading: the engine thread only; no lock is taken here (hcs_record() takes its own).
 */
#include "registry/checker/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static socklen_t make_sockaddr(const struct ip_addr *ip, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ip->family == IP_V4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip->b, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, ip->b, 16);
    return sizeof(*sin6);
}

/* Close with a reset instead of FIN: no TIME_WAIT on our side. */
void hct_set_linger0(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Hold back the handshake's last ACK (see the top of this file). A failure only costs that
 * saving, so it is ignored. */
static void set_delayed_ack(int fd)
{
    int zero = 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
}

static int is_local_errno(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL || err == EAGAIN;
}

void hct_start(struct hc_engine *e, struct target *t)
{
    struct sockaddr_storage ss;
    socklen_t len = make_sockaddr(&t->ip, t->cfg->port, &ss);
    char err[HC_ERROR_MAX], et[128];
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        hcs_local_error(e, t, "socket", errno);
        return;
    }
    hct_set_linger0(fd);
    set_delayed_ack(fd);
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        close(fd);
        hcs_record(e, t, 1, "");
        return;
    }
    if (errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        if (is_local_errno(saved)) {
            hcs_local_error(e, t, "connect", saved);
            return;
        }
        hcs_errno_text(saved, et, sizeof(et));
        snprintf(err, sizeof(err), "connect: %s", et);
        hcs_record(e, t, 0, err);
        return;
    }
    /* One-shot: after its event the registration is disarmed until close() removes it. */
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = (uint64_t)(uintptr_t)t};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int saved = errno;
        close(fd);
        hcs_local_error(e, t, "epoll_ctl", saved);
        return;
    }
    t->fd = fd;
    t->state = T_TCP;
    t->key = t->started_ns + (int64_t)t->cfg->timeout_ms * MS_NS;
    hcs_heap_push(&e->deadline, t);
    hcs_in_flight_inc(e);
}

/* Release the socket and slot of a check whose one-shot event has fired: the registration is
 * disarmed, and close() alone takes it out of the epoll set. */
static void end_fired(struct hc_engine *e, struct target *t)
{
    hcs_heap_remove(&e->deadline, t);
    close(t->fd);
    t->fd = -1;
    t->state = T_NEW;
    hcs_in_flight_dec(e);
}

/* Release the socket and slot of a check whose event has not been handled (a timeout, a
 * cancel): its registration leaves the epoll set before the socket closes. */
void hct_end(struct hc_engine *e, struct target *t)
{
    (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, t->fd, NULL);
    end_fired(e, t);
}

void hct_event(struct hc_engine *e, struct target *t, uint32_t events)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    char err[HC_ERROR_MAX], et[128];

    if (t->state != T_TCP)
        return;
    /* Writable without an error or a hangup: connected; SO_ERROR would read 0. */
    if ((events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP))) {
        end_fired(e, t);
        hcs_record(e, t, 1, "");
        return;
    }
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    end_fired(e, t);
    if (soerr) {
        hcs_errno_text(soerr, et, sizeof(et));
        snprintf(err, sizeof(err), "connect: %s", et);
    } else {
        snprintf(err, sizeof(err), "connect: connection closed");
    }
    hcs_record(e, t, 0, err);
}

void hct_expire(struct hc_engine *e, int64_t now)
{
    struct target *t;
    char err[HC_ERROR_MAX];
    while ((t = hcs_heap_top(&e->deadline)) && t->key <= now) {
        hct_end(e, t);
        snprintf(err, sizeof(err), "connect: timed out after %u ms", t->cfg->timeout_ms);
        hcs_record(e, t, 0, err);
    }
}

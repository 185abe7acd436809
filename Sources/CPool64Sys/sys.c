#define _GNU_SOURCE
#include "cpool64_sys.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int cpool64_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

long cpool64_send(int fd, const void *buf, unsigned long len, int flags) {
    return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

long cpool64_recv(int fd, void *buf, unsigned long len, int flags) {
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

int cpool64_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int cpool64_epoll_wait(int epfd, uint64_t *data, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        data[i] = evs[i].data.u64;
        events[i] = evs[i].events;
    }
    return n;
}

static void peer_text(const struct sockaddr_storage *ss, char *host, int host_len, int *port) {
    host[0] = 0;
    *port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, host_len);
        *port = ntohs(a->sin6_port);
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, host_len);
        *port = ntohs(a->sin_port);
    }
}

int cpool64_accept(int listen_fd, cpool64_peer *peer) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -errno;
    memset(peer, 0, sizeof *peer);
    peer->family = ss.ss_family;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        memcpy(peer->addr, &a->sin6_addr, 16);
        peer->port = ntohs(a->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        memcpy(peer->addr, &a->sin_addr, 4);
        peer->port = ntohs(a->sin_port);
    }
    return fd;
}

void cpool64_peer_text(const cpool64_peer *peer, char *host, int host_len) {
    host[0] = 0;
    if (peer->family == AF_INET6 || peer->family == AF_INET) {
        inet_ntop(peer->family, peer->addr, host, host_len);
    }
}

int cpool64_listen(const char *host, int port, int v6only, int backlog) {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        family = AF_INET6;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        family = AF_INET;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof *a4;
    } else {
        return -EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef TCP_DEFER_ACCEPT
    // A connection becomes acceptable when its first bytes (the startup packet or SSLRequest) arrive, so pool64
    // reads them in the same loop turn as the accept instead of one epoll round later (PgBouncer's
    // tcp_defer_accept does the same). One second: a client that connects and stays silent is accepted after
    // the first SYN-ACK retransmission and then meets client-login-timeout as before.
    int defer = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
#endif
    if (family == AF_INET6 && v6only >= 0) {
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cpool64_local_address(int fd, char *host, int host_len, int *port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -errno;
    peer_text(&ss, host, host_len, port);
    return 0;
}

void cpool64_tune_client_socket(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

int cpool64_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -errno;
    if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -errno;
    return 0;
}

int cpool64_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void cpool64_eventfd_signal(int fd) {
    eventfd_t one = 1;
    (void)eventfd_write(fd, one);
}

void cpool64_eventfd_drain(int fd) {
    eventfd_t v;
    (void)eventfd_read(fd, &v);
}

void cpool64_set_thread_name(const char *name) {
    char n[16];
    strncpy(n, name, 15);
    n[15] = 0;
    pthread_setname_np(pthread_self(), n);
}

long cpool64_getrandom(void *buf, unsigned long len) { return (long)getrandom(buf, len, 0); }

int cpool64_peer_address(int fd, char *host, int host_len, int *port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return -errno;
    peer_text(&ss, host, host_len, port);
    return 0;
}

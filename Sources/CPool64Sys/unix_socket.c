#define _GNU_SOURCE
#include "cpool64_sys.h"
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// A Unix stream socket bound (listen) or connected to `path`: the descriptor or -errno.
static int unix_socket(const char *path, int listening, int backlog) {
    size_t n = strlen(path);
    struct sockaddr_un sa;
    if (n == 0) return -EINVAL;
    if (n >= sizeof sa.sun_path) return -ENAMETOOLONG;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int failed = listening ? (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, backlog) != 0)
                           : connect(fd, (struct sockaddr *)&sa, len) != 0;
    if (failed) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cpool64_unix_listen(const char *path, int backlog) { return unix_socket(path, 1, backlog); }

int cpool64_unix_connect(const char *path) { return unix_socket(path, 0, 0); }

long cpool64_send_fds(int sock, const int *fds, int nfds, const void *buf, unsigned long len) {
    if (nfds < 0 || nfds > CPOOL64_MAX_PASSED_FDS || len == 0) return -EINVAL;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * CPOOL64_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    long n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long cpool64_recv_fds(int sock, int *fds, int max_fds, int *nfds, void *buf, unsigned long len) {
    *nfds = 0;
    if (max_fds < 0 || max_fds > CPOOL64_MAX_PASSED_FDS) return -EINVAL;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * CPOOL64_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    long n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        const int *got = (const int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            // More descriptors than asked for: close the extra ones rather than leak them.
            if (*nfds < max_fds) {
                fds[(*nfds)++] = got[i];
            } else {
                close(got[i]);
            }
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        for (int i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        return -EMSGSIZE;
    }
    return n;
}

int cpool64_socket_is_listening_tcp(int fd) {
    int type = 0, listening = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return -errno;
    len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return -errno;
    return type == SOCK_STREAM && listening && (domain == AF_INET || domain == AF_INET6);
}

int cpool64_unix_accept(int listen_fd) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int cpool64_peer_pid(int fd) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
    return cred.pid;
}

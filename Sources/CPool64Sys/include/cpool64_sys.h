#ifndef CPOOL64_SYS_H
#define CPOOL64_SYS_H
#include <stdint.h>

/// epoll without the packed `struct epoll_event` crossing into Swift (x86_64 packs it; Swift's importer and
/// pointer arithmetic on it are easy to get wrong). Events come back as two plain arrays.
int cpool64_epoll_create(void);
int cpool64_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int cpool64_epoll_wait(int epfd, uint64_t *data, uint32_t *events, int max, int timeout_ms);

/// send(2) and recv(2) on a non-blocking socket as plain system calls: glibc's `send`/`recv` wrappers are pthread
/// cancellation points and spend ~60 instructions each enabling and disabling asynchronous cancellation around the
/// call (callgrind: ~4 % of a relayed transaction). pool64 never cancels threads. Same return values and errno.
long cpool64_send(int fd, const void *buf, unsigned long len, int flags);
long cpool64_recv(int fd, void *buf, unsigned long len, int flags);

/// A peer address as accept(2) gave it (the first 4 bytes of `addr` for AF_INET), kept raw: its text is made only
/// when something is logged (inet_ntop's sprintf was a noticeable part of an accept).
typedef struct {
    uint8_t addr[16];
    int32_t family;
    int32_t port;
} cpool64_peer;

/// Non-blocking, close-on-exec accept that records the peer's address and port.
int cpool64_accept(int listen_fd, cpool64_peer *peer);
/// The numeric text of a peer's address ("" for an unknown family).
void cpool64_peer_text(const cpool64_peer *peer, char *host, int host_len);

/// A non-blocking TCP listening socket on a numeric address (TCP_DEFER_ACCEPT of 1 s on Linux: connections are
/// accepted once their first bytes arrive); `v6only` is -1 to leave IPV6_V6ONLY alone.
/// Returns the descriptor or -errno.
int cpool64_listen(const char *host, int port, int v6only, int backlog);
/// The local address of a bound socket as numeric text and port (as `cpool64_accept` gives the peer's);
/// 0 or -errno.
int cpool64_local_address(int fd, char *host, int host_len, int *port);
/// The same for the peer of a connected socket (getpeername).
int cpool64_peer_address(int fd, char *host, int host_len, int *port);

/// Connection options pool64 wants on every client socket: TCP_NODELAY and SO_KEEPALIVE.
void cpool64_tune_client_socket(int fd);
int cpool64_set_nonblocking(int fd);

/// getrandom(2): fills `buf`, returns bytes written or -1 (errno set).
long cpool64_getrandom(void *buf, unsigned long len);

/// eventfd for waking the loop from other threads.
int cpool64_eventfd(void);
void cpool64_eventfd_signal(int fd);
void cpool64_eventfd_drain(int fd);
void cpool64_set_thread_name(const char *name);

/// Unix stream sockets for the listener hand-over between an old and a new pool64 (Pool64Handover). Blocking and
/// close-on-exec; `path` is a filesystem path. Return the descriptor or -errno.
int cpool64_unix_listen(const char *path, int backlog);
int cpool64_unix_connect(const char *path);
/// Most descriptors one hand-over message carries (one per listen address).
#define CPOOL64_MAX_PASSED_FDS 32
/// sendmsg with `nfds` descriptors as SCM_RIGHTS and `len` (> 0) bytes of payload; bytes sent or -errno.
long cpool64_send_fds(int sock, const int *fds, int nfds, const void *buf, unsigned long len);
/// recvmsg receiving up to `max_fds` descriptors (close-on-exec) into `fds`, their count in `*nfds`, and payload
/// into `buf`; bytes received (0 at end of stream) or -errno. Extra or truncated descriptors are closed.
long cpool64_recv_fds(int sock, int *fds, int max_fds, int *nfds, void *buf, unsigned long len);
/// Close-on-exec accept on a Unix listening socket; the descriptor or -errno.
int cpool64_unix_accept(int listen_fd);
/// The pid of the process at the other end of a Unix socket (SO_PEERCRED), or -errno.
int cpool64_peer_pid(int fd);
/// 1 when `fd` is a listening TCP socket (IPv4 or IPv6), 0 when not, -errno when it is no socket.
int cpool64_socket_is_listening_tcp(int fd);

enum {
    CPOOL64_EPOLL_CTL_ADD = 1,
    CPOOL64_EPOLL_CTL_DEL = 2,
    CPOOL64_EPOLL_CTL_MOD = 3,
    CPOOL64_EPOLLIN = 0x001,
    CPOOL64_EPOLLOUT = 0x004,
    CPOOL64_EPOLLERR = 0x008,
    CPOOL64_EPOLLHUP = 0x010,
    CPOOL64_EPOLLRDHUP = 0x2000,
};
#endif

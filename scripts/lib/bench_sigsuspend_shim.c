/* For scripts/bench --profile: valgrind 3.19 writes to the signal mask passed to rt_sigsuspend, and libdispatch's
 * dispatchMain() passes one in read-only memory, so valgrind dies with SIGSEGV. LD_PRELOADed into pool64, this
 * passes a writable copy instead. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
}

/* Unix process setup, and the direct non-blocking receive both the
 * synchronous path and the readiness path use. */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>

#include "internal.h"

static uv_once_t platform_once = UV_ONCE_INIT;

static void ignore_sigpipe(void) {
  struct sigaction old;
  /* Only where nobody chose a disposition: the application's own choice,
   * a handler or an explicit ignore, stands. */
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
      (old.sa_flags & SA_SIGINFO) == 0)
    signal(SIGPIPE, SIG_IGN);
}

void asock__platform_init(void) { uv_once(&platform_once, ignore_sigpipe); }

long asock__try_recv(asock_socket *sock, void *buf, size_t len) {
  int fd = sock->io.fd;
  ssize_t n;

  if (fd < 0)
    return ASOCK_EBADF;
  do
    n = recv(fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    return (long)n;
  if (n == 0)
    return ASOCK_EOF;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__from_uv(-errno);
}

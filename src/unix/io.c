/* Unix process setup. */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>

#include "internal.h"

_Thread_local char asock__thread_byte;

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

ASOCK__NOINLINE long asock__try_recv_rest(int fd, void *buf, size_t len,
                                          ssize_t n) {
  while (n < 0 && errno == EINTR)
    n = asock__sys_read(fd, buf, len);
  if (n > 0)
    return (long)n;
  if (n == 0)
    return ASOCK_EOF;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

ASOCK__NOINLINE long asock__try_send_rest(int fd, const void *buf, size_t len,
                                          ssize_t r) {
  while (r < 0 && errno == EINTR)
    r = asock__sys_send(fd, buf, len, ASOCK__SEND_FLAGS);
  if (r >= 0)
    return (long)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

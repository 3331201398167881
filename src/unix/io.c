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

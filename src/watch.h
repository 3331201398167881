/* A socket asock reads and writes itself, watched by a libuv poll handle:
 * every socket of the readiness backend (src/unix/), and on Windows the UDP
 * sockets and a loop group's hand-off listener (src/win/). The handle
 * watches what is wanted. Inside its callback (busy) a change waits until
 * the callback is done, so that a want dropped and taken again costs
 * nothing (each change costs libuv a system call); a start libuv refuses
 * is asked for again at the next change. Included by the platform's
 * platform.h, after its ASOCK__NO_SOCKET. */
#ifndef ASOCK_WATCH_H
#define ASOCK_WATCH_H

#include <uv.h>

/* What is wanted, and watched. */
#define ASOCK__WATCH_READ 0x1u
#define ASOCK__WATCH_WRITE 0x2u

typedef struct asock__watch {
  uv_os_sock_t socket; /* ASOCK__NO_SOCKET until opened, and once closed;
                        * first, where a ring socket (src/uring/ring.h)
                        * keeps its own */
  unsigned char want;  /* ASOCK__WATCH_* wanted */
  unsigned char armed; /* what the handle watches now */
  unsigned char busy;  /* the callback runs: changes wait for its end */
  uv_poll_cb cb;       /* the backend's callback */
  uv_poll_t poll;      /* last: a holder finds itself from a handle pointer
                        * with ASOCK__CONTAINER_OF() */
} asock__watch;

/* Nothing watched, no socket. */
void asock__watch_init(asock__watch *w);
/* Opens the poll handle on s (which libuv makes non-blocking), nothing
 * wanted yet: 0, or the error (s is left open). */
int asock__watch_open(asock__watch *w, uv_loop_t *uv, uv_os_sock_t s,
                      uv_poll_cb cb);
/* Starts (on != 0) or stops wanting ASOCK__WATCH_READ or _WRITE. */
void asock__watch_want(asock__watch *w, unsigned int what, int on);
/* Makes the handle watch what is wanted, unless the callback runs. */
void asock__watch_update(asock__watch *w);
/* The socket is closed: nothing is watched any more. */
void asock__watch_forget(asock__watch *w);

#endif /* ASOCK_WATCH_H */

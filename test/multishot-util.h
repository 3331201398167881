/* What the multishot and slice suites share: an op whose deliveries and
 * final completion are recorded and checked against the contract, and
 * that can take each delivery's slice, cancel or close inside one, or
 * release itself in its final completion. */
#ifndef ASOCK_TEST_MULTISHOT_UTIL_H
#define ASOCK_TEST_MULTISHOT_UTIL_H

#include "tcp-util.h"

#define MS_MAX 64

/* What the callbacks of one multishot op saw, and what they are to do. */
typedef struct ms_rec {
  int deliveries;
  int finals;
  int final_status;
  uint64_t final_seq;
  uint64_t seqs[MS_MAX];
  size_t sizes[MS_MAX];
  unsigned char data[16384]; /* every delivered byte, in order */
  size_t len;
  /* Set by the test. */
  int detach;     /* take each delivery's slice */
  int cancel_at;  /* asock_cancel() inside this delivery (1-based) */
  int close_at;   /* asock_socket_close() inside this delivery */
  int release_op; /* asock_op_release() inside the final completion */
  int restarts;   /* times the test started the op again after its end */
  /* Slices taken, and where their data is. */
  void *slices[MS_MAX];
  size_t offsets[MS_MAX];
  int nslices;
} ms_rec;

/* The callback of ms_op(): records and checks what it is told. */
void ms_cb(asock_op *op);
/* The pool's statistics now. */
asock_pool_stats ms_stats(void);
/* An op of tu_op() made multishot, reporting to r. */
asock_op *ms_op(ms_rec *r);
/* Sends `len` bytes of stream `stream` from `pos` and waits until r has
 * had `deliveries` deliveries. */
void ms_send_and_wait(asock_socket *sock, ms_rec *r, size_t len,
                      uint32_t stream, uint64_t pos, int deliveries);
/* r holds exactly the first len bytes of stream. */
void ms_assert_stream(const ms_rec *r, size_t len, uint32_t stream);
/* Closes the pair's server, whose multishot receive (reporting to r) must
 * end then with ASOCK_ECANCELED, its only final completion, and the
 * client. */
void ms_close_pair(tu_pair *p, ms_rec *r);

#endif /* ASOCK_TEST_MULTISHOT_UTIL_H */

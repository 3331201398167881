/* The recorded multishot op of multishot-util.h. */
#include <string.h>

#include "multishot-util.h"

asock_pool_stats ms_stats(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st;
}

void ms_cb(asock_op *op) {
  ms_rec *r = asock_op_user_data(op);
  ck_assert_msg(!tu_inside_call(), "a callback ran inside a starting call");
  /* Nothing after a final completion, until the op is started again. */
  ck_assert_int_eq(r->finals, r->restarts);
  if (asock_op_more(op)) {
    size_t n = asock_op_bytes(op);
    uint64_t seq = asock_op_seq(op);
    ck_assert_int_eq(asock_op_is_pending(op), 1);
    ck_assert_asock(asock_op_status(op), 0);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_lt(r->deliveries, MS_MAX);
    ck_assert_uint_le(r->len + n, sizeof(r->data));
    memcpy(r->data + r->len, asock_op_data(op), n);
    r->len += n;
    r->sizes[r->deliveries] = n;
    r->seqs[r->deliveries++] = seq;
    /* A pending op cannot be changed or released, even now. */
    ck_assert_asock(asock_op_set_timeout(op, 5), ASOCK_EBUSY);
    ck_assert_asock(asock_op_release(tu_pool, op), ASOCK_EBUSY);
    if (r->detach) {
      void *slice, *again;
      size_t off, len;
      ck_assert_asock(asock_op_detach_slice(op, &slice, &off, &len), 0);
      ck_assert_uint_eq(len, n);
      ck_assert_int_eq(memcmp((char *)slice + off, r->data + r->len - n, n), 0);
      ck_assert_ptr_null(asock_op_data(op));
      ck_assert_asock(asock_op_detach_slice(op, &again, NULL, NULL),
                      ASOCK_ENOSLICE);
      ck_assert_ptr_null(again);
      r->offsets[r->nslices] = off;
      r->slices[r->nslices++] = slice;
    }
    if (r->cancel_at == r->deliveries || r->close_at == r->deliveries) {
      if (r->cancel_at == r->deliveries)
        ck_assert_asock(asock_cancel(op), 0);
      else
        ck_assert_asock(asock_socket_close(asock_op_socket(op), 0), 0);
      /* The delivery's results stay until the callback returns. */
      ck_assert_int_eq(asock_op_more(op), 1);
      ck_assert_int_eq(asock_op_is_pending(op), 1);
      ck_assert_asock(asock_op_status(op), 0);
      ck_assert_uint_eq(asock_op_bytes(op), n);
      ck_assert_uint_eq(asock_op_seq(op), seq);
      ck_assert_asock(asock_cancel(op), 0);
    }
    return;
  }
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  r->finals++;
  r->final_status = asock_op_status(op);
  r->final_seq = asock_op_seq(op);
  ck_assert_uint_eq(asock_op_bytes(op), 0);
  if (r->release_op)
    ck_assert_asock(asock_op_release(tu_pool, op), 0);
}

asock_op *ms_op(ms_rec *r) {
  asock_op *op = tu_op();
  memset(r, 0, sizeof(*r));
  ck_assert_asock(asock_op_set_callback(op, ms_cb), 0);
  ck_assert_asock(asock_op_set_user_data(op, r), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  ck_assert_int_eq(asock_op_multishot(op), 1);
  return op;
}

void ms_send_and_wait(asock_socket *sock, ms_rec *r, size_t len,
                      uint32_t stream, uint64_t pos, int deliveries) {
  unsigned char out[4096];
  ck_assert_uint_le(len, sizeof(out));
  tu_fill(out, len, stream, pos);
  tu_send_all(sock, out, len);
  ck_assert(tu_wait_count(&r->deliveries, deliveries));
}

void ms_assert_stream(const ms_rec *r, size_t len, uint32_t stream) {
  ck_assert_uint_eq(r->len, len);
  ck_assert_uint_eq(tu_mismatch(r->data, len, stream, 0), len);
}

void ms_close_pair(tu_pair *p, ms_rec *r) {
  ck_assert_int_eq(r->finals, 0);
  ck_assert_asock(tu_close(p->server, 0), 0);
  ck_assert(tu_wait_count(&r->finals, 1));
  ck_assert_asock(r->final_status, ASOCK_ECANCELED);
  ck_assert_asock(tu_close(p->client, 0), 0);
}

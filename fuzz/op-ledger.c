/* The fuzz-op target's ledger (see op-harness.h): the sequence numbers each
 * counter of each socket handed out, and the slices the application took
 * out of its ops and still holds. */
#include <string.h>

#include "op-harness.h"

/* ---- sequence numbers --------------------------------------------------- */

static const char *counter_name(const seqset *set) {
  return set->receives ? "receive" : "send";
}

/* A counter for a new socket, kept until the input ends: an op may report
 * a number of a socket closed since. */
seqset *fo_seq_new(int sock, int receives) {
  seqset *set = calloc(1, sizeof(*set));

  FZ_CHECK(set != NULL, "out of memory");
  set->sock = sock;
  set->receives = receives;
  if (h.nsets == h.sets_cap) {
    size_t cap = h.sets_cap * 2 + 16;
    seqset **sets = realloc(h.sets, cap * sizeof(*sets));
    FZ_CHECK(sets != NULL, "out of memory");
    h.sets = sets;
    h.sets_cap = cap;
  }
  h.sets[h.nsets++] = set;
  return set;
}

static void mark(seqset *set, uint64_t seq, const char *what) {
  FZ_CHECK(seq != 0, "%s on socket %d has no %s number", what, set->sock,
           counter_name(set));
  FZ_CHECK(seq < ((uint64_t)1 << 32), "%s got %s number %llu", what,
           counter_name(set), (unsigned long long)seq);
  if (seq >= set->cap) {
    size_t cap = set->cap * 2 + 4096;
    unsigned char *seen;
    while (cap <= seq)
      cap *= 2;
    seen = realloc(set->seen, cap / 8);
    FZ_CHECK(seen != NULL, "out of memory");
    memset(seen + set->cap / 8, 0, (cap - set->cap) / 8);
    set->seen = seen;
    set->cap = cap;
  }
  FZ_CHECK(!(set->seen[seq / 8] & (1u << (seq % 8))),
           "%s on socket %d got %s number %llu, which was given before", what,
           set->sock, counter_name(set), (unsigned long long)seq);
  set->seen[seq / 8] |= (unsigned char)(1u << (seq % 8));
  set->count++;
  if (seq > set->max)
    set->max = seq;
}

/* A number seen at the moment it was taken (a start, a delivery): the
 * counter only goes up, so it is above every number seen before. */
void fo_seq_taken_now(seqset *set, uint64_t seq, const char *what) {
  FZ_CHECK(seq > set->max,
           "%s on socket %d took %s number %llu, after %llu had been given",
           what, set->sock, counter_name(set), (unsigned long long)seq,
           (unsigned long long)set->max);
  mark(set, seq, what);
}

/* A number taken earlier, when the receive ended (a multishot receive's
 * final completion): it need only be new. */
void fo_seq_seen(seqset *set, uint64_t seq, const char *what) {
  mark(set, seq, what);
}

void fo_seq_check_whole(const seqset *set) {
  FZ_CHECK(set->count == set->max,
           "socket %d's %s counter: %llu numbers seen, the highest %llu: "
           "numbers were skipped",
           set->sock, counter_name(set), (unsigned long long)set->count,
           (unsigned long long)set->max);
}

void fo_ledger_end(void) {
  size_t i;
  for (i = 0; i < h.nsets; i++) {
    fo_seq_check_whole(h.sets[i]);
    free(h.sets[i]->seen);
    free(h.sets[i]);
  }
  free(h.sets);
  h.sets = NULL;
  h.nsets = 0;
  h.sets_cap = 0;
}

/* ---- slices the application took ------------------------------------------
 */

static uint32_t sum(const unsigned char *p, size_t len) {
  uint32_t x = 2166136261u;
  size_t i;
  for (i = 0; i < len; i++)
    x = (x ^ p[i]) * 16777619u;
  return x;
}

static int open_now(int sock, unsigned int gen) {
  return h.socks[sock].s != NULL && h.socks[sock].gen == gen;
}

/* The slices counted against a socket now, or 0 if it is gone. */
static size_t held(int sock, unsigned int gen) {
  return open_now(sock, gen) ? asock_socket_slices_held(h.socks[sock].s) : 0;
}

/* Takes the op's slice as the application: refused while the op is
 * pending except inside a delivery, and with ASOCK_ENOSLICE when the op
 * holds none. in_delivery is 2 inside a delivery, 1 inside a completion
 * (or just after a synchronous one), 0 at a step of its own. */
int fo_detach(fop *f, int in_delivery) {
  asock_op *op = f->op;
  asock_buffer_mode mode = asock_op_buffer_mode(op);
  unsigned char *data = asock_op_data(op);
  size_t bytes = asock_op_bytes(op);
  size_t offset = asock_op_offset(op);
  size_t before = held(f->sock, f->gen);
  detached *d;
  void *again;
  size_t span;
  void *slice = &slice;
  size_t off = 1;
  size_t len = 1;
  int want;
  int r;

  if (h.ntaken == MAX_DETACHED)
    return 0;
  if (f->pending && in_delivery != 2)
    want = ASOCK_EBUSY;
  else
    want = mode == ASOCK_BUFFER_SLICE ? 0 : ASOCK_ENOSLICE;
  in_call = 1;
  r = asock_op_detach_slice(op, &slice, &off, &len);
  in_call = 0;
  if (trace)
    fprintf(stderr, "op %d: detach_slice: %s\n", (int)(f - h.ops),
            fo_result_name(r));
  FZ_CHECK_CODE(r, want, "detach_slice");
  if (r != 0) {
    FZ_CHECK(slice == NULL && off == 0 && len == 0,
             "a refused detach_slice left its out-parameters set");
    return 0;
  }
  FZ_CHECK(slice != NULL && off == offset && len == bytes &&
               (unsigned char *)slice + off == data,
           "detach_slice gave offset %zu and %zu bytes; the op said %zu "
           "and %zu",
           off, len, offset, bytes);
  /* len is the bytes of the op's last operation: the data the slice holds
   * only when that was a receive (a slice taken after a send says the
   * send's). */
  span = fo_is_receive(asock_op_last_kind(op)) ? len : 0;
  FZ_CHECK(off + span <= asock_pool_slice_size(h.pool),
           "a taken slice's data runs past its end");
  FZ_CHECK(asock_op_buffer_mode(op) == ASOCK_BUFFER_NONE &&
               asock_op_data(op) == NULL,
           "the op still has a buffer after detach_slice");
  /* A slice a receive took counts against its socket from now on: the
   * charge moves from the op to the application's slice, or (a TCP
   * delivery's, not charged while the delivery lasts) starts now. */
  FZ_CHECK(held(f->sock, f->gen) == before ||
               held(f->sock, f->gen) == before + 1,
           "detach_slice changed its socket's slices from %zu to %zu", before,
           held(f->sock, f->gen));
  FZ_CHECK_CODE(asock_op_detach_slice(op, &again, NULL, NULL), ASOCK_ENOSLICE,
                "a second detach_slice");
  d = &h.taken[h.ntaken++];
  d->slice = slice;
  d->off = off;
  d->len = span;
  d->sum = sum(data, span);
  d->sock = f->sock;
  d->gen = f->gen;
  /* A slice an on-demand receive took, taken in that receive's callback,
   * is counted against the socket; for others it depends on the op's
   * history. */
  d->charged =
      in_delivery != 0 && f->window == 0 && fo_is_receive(f->kind) ? 1 : -1;
  if (d->charged == 1 && fo_same_socket(f))
    FZ_CHECK(held(f->sock, f->gen) >= 1,
             "a slice taken from a receive is not counted against its "
             "socket");
  return 1;
}

/* Gives back taken slice i: its bytes are as they were when it was taken,
 * the pool takes it once, and its socket's count drops by its charge. */
void fo_release_taken(int i) {
  detached *d = &h.taken[i];
  size_t before = held(d->sock, d->gen);
  size_t size = asock_pool_slice_size(h.pool);
  int r;

  if (trace)
    fprintf(stderr, "release taken slice %d of %d (socket %d)\n", i, h.ntaken,
            d->sock);
  FZ_CHECK(sum((unsigned char *)d->slice + d->off, d->len) == d->sum,
           "the %zu bytes of a slice the application took changed before "
           "it gave it back",
           d->len);
  if (size > 1 && (fo_rand() & 3) == 0)
    FZ_CHECK_CODE(asock_pool_release(h.pool, (char *)d->slice + 1),
                  ASOCK_EMIDSLICE, "pool_release inside a taken slice");
  in_call = 1;
  r = asock_pool_release(h.pool, d->slice);
  in_call = 0;
  FZ_CHECK_CODE(r, 0, "pool_release of a taken slice");
  /* Nothing runs between the two calls: the slice is still free. */
  if ((fo_rand() & 3) == 0)
    FZ_CHECK_CODE(asock_pool_release(h.pool, d->slice), ASOCK_ENOTHELD,
                  "a second pool_release of a taken slice");
  if (d->charged >= 0 && open_now(d->sock, d->gen))
    FZ_CHECK(held(d->sock, d->gen) == before - (size_t)d->charged,
             "giving back a slice took socket %d's slices from %zu to %zu",
             d->sock, before, held(d->sock, d->gen));
  h.taken[i] = h.taken[--h.ntaken];
}

void fo_release_all_taken(void) {
  while (h.ntaken > 0)
    fo_release_taken(h.ntaken - 1);
}

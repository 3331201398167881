/* Sends of packets (SendPacketsAsync): a list of pieces, each bytes in
 * memory or a range of a file, sent as one stream in posting order with the
 * socket's other sends. A packets op waits in the send queue like any send,
 * but is never gathered with the others: at the head of the queue it is
 * driven by packets_step(), which sends its memory pieces with the usual
 * non-blocking writes and its file ranges with sendfile() where the
 * platform has it (Linux), else by reading each range a pool slice at a
 * time with libuv's file functions, which run on its thread pool, and
 * sending the slice. Its progress is op->sent, the bytes of the whole list
 * on the wire, as for any send; a file range's slice (op->chunk) holds
 * its bytes from op->chunk_at on. */
#include <string.h>

#include "internal.h"

/* The piece op->sent is in: its index, and where it starts in the op's
 * stream. op->pk_index and op->pk_start remember the last answer, so that
 * the walk is short. */
static const asock_packet *locate(asock_op *op, uint64_t *into) {
  while (op->pk_index < op->npackets &&
         op->sent >= op->pk_start + op->packets[op->pk_index].len) {
    op->pk_start += op->packets[op->pk_index].len;
    op->pk_index++;
  }
  *into = op->sent - op->pk_start;
  return &op->packets[op->pk_index];
}

/* The chunk's bytes not yet sent, when it holds the current position. */
static size_t chunk_left(const asock_op *op) {
  if (op->chunk == NULL || op->sent < op->chunk_at ||
      op->sent >= op->chunk_at + op->chunk_len)
    return 0;
  return (size_t)(op->chunk_at + op->chunk_len - op->sent);
}

/* Gives back the chunk once its bytes are all sent (or the op ends). */
static void drop_chunk(asock_op *op) {
  if (op->chunk != NULL) {
    asock__loop_give_slice(op->socket->loop, op->chunk);
    op->chunk = NULL;
  }
}

unsigned int asock__packets_iov(asock_op *op, uv_buf_t *iov, unsigned int n,
                                unsigned int max, size_t *bytes) {
  uint64_t into;
  uint64_t at = op->sent;

  if (op->sent == op->total)
    return n;
  (void)locate(op, &into);
  while (n < max && at < op->total) {
    size_t i = op->pk_index;
    uint64_t start = op->pk_start;
    const asock_packet *p;
    size_t len;
    /* The piece `at` is in, walking on from the current one. */
    while (at >= start + op->packets[i].len) {
      start += op->packets[i].len;
      i++;
    }
    p = &op->packets[i];
    if (p->base != NULL) {
      len = (size_t)(start + p->len - at);
      iov[n].base = (char *)p->base + (at - start);
    } else {
      uint64_t saved = op->sent;
      op->sent = at;
      len = chunk_left(op);
      op->sent = saved;
      if (len == 0)
        break; /* the file's bytes are not in memory yet */
      iov[n].base = (char *)op->chunk + (size_t)(at - op->chunk_at);
    }
    if (len > 0x40000000u)
      len = 0x40000000u;
    iov[n].len = (unsigned int)len;
    n++;
    *bytes += len;
    at += len;
  }
  return n;
}

void asock__packets_took(asock_op *op) {
  if (op->chunk != NULL && op->chunk_len > 0 &&
      op->sent >= op->chunk_at + op->chunk_len)
    drop_chunk(op);
}

/* Counts bytes the kernel took. */
static void took(asock_socket *sock, asock_op *op, size_t n) {
  op->sent += n;
  sock->send_queued -= n;
  asock__packets_took(op);
}

int asock__packets_step(asock_socket *sock, asock_op *op) {
  for (;;) {
    const asock_packet *p;
    uint64_t into;
    unsigned int n;
    size_t bytes = 0;
    long written;

    if (op->sent == op->total)
      return ASOCK__PK_DONE;
    p = locate(op, &into);
    if (p->base != NULL || chunk_left(op) > 0) {
      n = asock__packets_iov(op, sock->loop->iov, 0, ASOCK__IOV_MAX, &bytes);
      written = asock__io_try_write(sock, sock->loop->iov, n);
      if (written == ASOCK_EAGAIN)
        return ASOCK__PK_WRITE;
      if (written < 0)
        return (int)written;
      took(sock, op, (size_t)written);
      if ((size_t)written < bytes)
        return ASOCK__PK_WRITE;
      continue;
    }
    /* A file range whose bytes are not in memory. */
    if ((op->flags & ASOCK__OPF_NO_SENDFILE) == 0) {
      written = asock__io_sendfile(sock, p->file, p->offset + (int64_t)into,
                                   (size_t)(p->len - into));
      if (written > 0) {
        took(sock, op, (size_t)written);
        continue;
      }
      if (written == 0)
        return ASOCK_EOF; /* the file ends before the range */
      if (written == ASOCK_EAGAIN)
        return ASOCK__PK_WRITE;
      if (written != ASOCK_ENOTSUP)
        return (int)written;
      op->flags |= ASOCK__OPF_NO_SENDFILE;
    }
    return ASOCK__PK_READ;
  }
}

static void on_file_read(uv_fs_t *req);

int asock__packets_read(asock_socket *sock, asock_op *op) {
  asock_loop *loop = sock->loop;
  asock__file_read *r = op->fs;
  uint64_t into;
  const asock_packet *p = locate(op, &into);
  uint64_t want = p->len - into;
  uv_buf_t buf;
  void *slice;
  int err;

  if (r == NULL) {
    /* Made once per op, at its first file read, and kept until release. */
    r = asock__malloc(sizeof(*r));
    if (r == NULL)
      return ASOCK_ENOMEM;
    op->fs = r;
  }
  if (asock__loop_take_slice(loop, &slice) != 0) {
    if (loop->pool->flags & ASOCK_POOL_FAIL_FAST)
      return ASOCK_ENOBUFS;
    /* Back-pressure, as for a receive: the send waits for a slice. */
    asock__loop_wait_slice_send(loop, sock);
    return 0;
  }
  if (want > loop->pool->slice_size)
    want = loop->pool->slice_size;
  buf = uv_buf_init((char *)slice, (unsigned int)want);
  r->op = op;
  r->loop = loop;
  r->slice = slice;
  err = asock__uv_fs_read(loop->uv, &r->req, p->file, &buf, 1,
                          p->offset + (int64_t)into, on_file_read);
  if (err != 0) {
    asock__loop_give_slice(loop, slice);
    return asock__from_uv(err);
  }
  op->chunk = slice;
  op->chunk_at = op->sent;
  op->chunk_len = 0;
  loop->file_reads++;
  sock->flags |= ASOCK__SF_FILE_READ;
  return 0;
}

void asock__packets_abandon(asock_socket *sock) {
  asock_op *op = sock->send_head;

  sock->flags &= ~ASOCK__SF_FILE_READ;
  /* The read keeps the slice, and itself, until it ends. */
  op->fs->op = NULL;
  op->fs = NULL;
  op->chunk = NULL;
  op->chunk_len = 0;
}

/* A chunk read finished, on the loop's thread. */
static void on_file_read(uv_fs_t *req) {
  asock__file_read *r = (asock__file_read *)req;
  asock_op *op = r->op;
  asock_loop *loop = r->loop;
  ssize_t result = req->result;
  asock_socket *sock;

  uv_fs_req_cleanup(req);
  loop->file_reads--;
  if (op == NULL) {
    asock__loop_give_slice(loop, r->slice);
    asock__free(r);
    return;
  }
  sock = op->socket;
  sock->flags &= ~ASOCK__SF_FILE_READ;
  if (result > 0)
    op->chunk_len = (size_t)result;
  else
    drop_chunk(op);
  asock__packets_read_done(sock, op,
                           result > 0    ? 0
                           : result == 0 ? ASOCK_EOF
                                         : asock__from_uv((int)result));
}

void asock__packets_end(asock_op *op) { drop_chunk(op); }

int asock__packets_check(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_send(sock, op);
  if (err != 0)
    return err;
  if (op->packets == NULL)
    return ASOCK_EINVAL;
  if (sock->send_cap != 0 && sock->send_queued > 0 &&
      sock->send_queued + op->packets_total > sock->send_cap)
    return ASOCK_ENOBUFS;
  return 0;
}

int asock_op_set_packets(asock_op *op, const asock_packet *packets,
                         size_t count) {
  uint64_t total = 0;
  size_t i;

  if (op == NULL || (packets == NULL && count != 0) || count > ASOCK_MAX_BUFS)
    return ASOCK_EINVAL;
  if (asock_op_is_pending(op))
    return ASOCK_EBUSY;
  for (i = 0; i < count; i++) {
    const asock_packet *p = &packets[i];
    if (p->base == NULL && p->len > 0 && (p->file < 0 || p->offset < 0))
      return ASOCK_EINVAL;
    /* The send counts its bytes in a size_t. */
    if (p->len > SIZE_MAX - total)
      return ASOCK_EBOUNDS;
    total += p->len;
  }
  op->packets = packets;
  op->npackets = count;
  op->packets_total = (size_t)total;
  return 0;
}

/* Helpers of the UDP loopback tests. */
#include "udp-util.h"

asock_socket *uu_bound(const struct sockaddr_storage *addr, unsigned int flags,
                       struct sockaddr_storage *out) {
  asock_socket *sock;
  struct sockaddr_storage got;
  int len = (int)sizeof(got);

  ck_assert_asock(asock_udp_create(&sock, tu_loop), 0);
  ck_assert_asock(asock_udp_bind(sock, (const struct sockaddr *)addr, flags),
                  0);
  ck_assert_asock(
      asock_socket_local_address(sock, (struct sockaddr *)&got, &len), 0);
  ck_assert_int_eq(got.ss_family, addr->ss_family);
  ck_assert_uint_ne(tu_port(&got), 0);
  if (out != NULL)
    *out = got;
  return sock;
}

asock_socket *uu_sender(int family) {
  struct sockaddr_storage addr;
  tu_addr(family == AF_INET6 ? "::1" : "127.0.0.1", 0, &addr);
  return uu_bound(&addr, 0, NULL);
}

void uu_pair_open(uu_pair *p, const char *ip) {
  struct sockaddr_storage addr;
  tu_addr(ip, 0, &addr);
  p->a = uu_bound(&addr, 0, &p->a_addr);
  p->b = uu_bound(&addr, 0, &p->b_addr);
  ck_assert_uint_ne(tu_port(&p->a_addr), tu_port(&p->b_addr));
}

void uu_pair_close(uu_pair *p) {
  ck_assert_asock(tu_close(p->a, 0), 0);
  ck_assert_asock(tu_close(p->b, 0), 0);
}

void uu_send(asock_socket *sock, asock_op *op, const void *buf, size_t len,
             const struct sockaddr_storage *to) {
  int r;

  ck_assert_asock(asock_op_clear_buffer(op), 0);
  tu_set_buffer(op, (void *)(uintptr_t)buf, len);
  ck_assert_asock(asock_op_set_remote(op, (const struct sockaddr *)to), 0);
  r = tu_send_to(sock, op);
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_idle(op));
  else
    ck_assert_asock(r, 0);
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), len);
}

int uu_receive_one(asock_socket *sock, asock_op *op) {
  int r = tu_receive_from(sock, op);
  if (r == ASOCK_PENDING && !tu_wait_idle(op))
    return 0;
  else if (r != 0 && r != ASOCK_PENDING)
    return 0;
  return asock_op_status(op) == 0;
}

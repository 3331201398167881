/* UDP over loopback: send-to, receive-from and receive-message-from, their
 * checks, truncation, packet information, the default peer, options and
 * multicast. */
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <net/if.h>
#endif

#include "internal.h"
#include "tcp-util.h"
#include "udp-util.h"

START_TEST(udp_refuses_bad_input) {
  asock_socket *u;
  asock_socket *t;
  asock_op *op = tu_op();
  struct sockaddr_storage a;
  struct sockaddr_storage six;
  char buf[16];

  tu_addr("127.0.0.1", 0, &a);
  tu_addr("::1", 9, &six);
  ck_assert_asock(asock_udp_create(NULL, tu_loop), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_create(&u, NULL), ASOCK_EINVAL);
  ck_assert_ptr_null(u);
  ck_assert_asock(asock_udp_create(&u, tu_loop), 0);
  ck_assert_asock(asock_tcp_create(&t, tu_loop), 0);

  /* Before the OS socket exists. */
  tu_set_buffer(op, buf, sizeof(buf));
  ck_assert_asock(tu_receive_from(u, op), ASOCK_ENOTCONN);
  ck_assert_asock(asock_udp_set_broadcast(u, 1), ASOCK_ENOTCONN);
  ck_assert_asock(asock_udp_set_ttl(u, 5), ASOCK_ENOTCONN);
  ck_assert_asock(asock_udp_connect(u, NULL), ASOCK_ENOTCONN);
  ck_assert_asock(tu_send_to(u, op), ASOCK_EDESTADDRREQ);

  ck_assert_asock(asock_udp_bind(NULL, (struct sockaddr *)&a, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_bind(u, NULL, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_bind(u, (struct sockaddr *)&a, 0x80), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_bind(t, (struct sockaddr *)&a, 0), ASOCK_EKIND);
  ck_assert_asock(asock_udp_bind(u, (struct sockaddr *)&a, 0), 0);
  ck_assert_asock(asock_udp_bind(u, (struct sockaddr *)&a, 0), ASOCK_EKIND);

  /* The stream operations are not for a datagram socket, nor the other way
   * round. */
  ck_assert_asock(tu_send(u, op), ASOCK_EKIND);
  ck_assert_asock(tu_receive(u, op), ASOCK_EKIND);
  ck_assert_asock(tu_connect(u, op), ASOCK_EKIND);
  ck_assert_asock(tu_disconnect(u, op), ASOCK_EKIND);
  ck_assert_asock(asock_tcp_listen(u, (struct sockaddr *)&a, 1, 0),
                  ASOCK_EKIND);
  ck_assert_asock(tu_send_to(t, op), ASOCK_EKIND);
  ck_assert_asock(tu_receive_from(t, op), ASOCK_EKIND);
  ck_assert_asock(asock_udp_set_ttl(t, 5), ASOCK_EKIND);

  /* Send-to: no address, an empty op, a datagram too large, an IPv6
   * peer for an IPv4 socket. */
  ck_assert_asock(tu_send_to(u, op), ASOCK_EDESTADDRREQ);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&six), 0);
  ck_assert_asock(tu_send_to(u, op), ASOCK_EAFNOSUPPORT);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&a), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(tu_send_to(u, op), ASOCK_EINVAL);
  {
    static char big[65508];
    tu_set_buffer(op, big, sizeof(big));
    ck_assert_asock(tu_send_to(u, op), ASOCK_EMSGSIZE);
  }
  ck_assert_asock(tu_send_to(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_receive_from(u, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_receive_message_from(NULL, op), ASOCK_EINVAL);

  /* Options out of range, multicast groups that are not. */
  ck_assert_asock(asock_udp_set_ttl(u, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_set_ttl(u, 256), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_set_multicast_ttl(u, -1), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_set_membership(u, (struct sockaddr *)&a, NULL, 1),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_udp_set_membership(u, NULL, NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_set_multicast_interface(u, (struct sockaddr *)&six),
                  ASOCK_EAFNOSUPPORT);
  ck_assert_int_eq(tu_completions, 0);

  ck_assert_asock(tu_close(u, 0), 0);
  ck_assert_asock(tu_close(u, 0), ASOCK_ECLOSED);
  ck_assert_asock(tu_close(t, 0), 0);
}
END_TEST

/* One datagram each way, synchronous where the data is already there and
 * through the callback where it is not. */
static void round_trip(const char *ip) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[300];
  unsigned char in[512];

  uu_pair_open(&p, ip);
  tu_fill(out, sizeof(out), 1, 0);

  /* Receive first: it waits. */
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_PENDING);
  ck_assert_uint_eq(asock_op_seq(rx), 1);
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  ck_assert_uint_eq(asock_op_seq(tx), 1);
  ck_assert_uint_eq(asock_op_bytes(tx), sizeof(out));
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_rec(rx)->status, 0);
  ck_assert_uint_eq(tu_rec(rx)->bytes, sizeof(out));
  ck_assert_int_eq(tu_rec(rx)->kind, ASOCK_OP_RECEIVEFROM);
  ck_assert_uint_eq(tu_mismatch(in, sizeof(out), 1, 0), sizeof(out));
  ck_assert(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&p.a_addr));
  ck_assert_uint_eq(asock_op_msg_flags(rx), 0);

  /* Data first: the receive completes inside the call. */
  tu_fill(out, sizeof(out), 2, 0);
  uu_send(p.b, tx, out, 17, &p.a_addr);
  memset(in, 0, sizeof(in));
  ck_assert_asock(tu_receive_from(p.a, rx), 0);
  ck_assert_asock(asock_op_status(rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), 17);
  ck_assert_uint_eq(tu_mismatch(in, 17, 2, 0), 17);
  ck_assert_int_eq(in[17], 0);
  ck_assert(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&p.b_addr));
  ck_assert_int_eq(tu_rec(rx)->calls, 1);

  /* The receiving op answers with the address it was given. */
  ck_assert_asock(tu_send_to(p.a, rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(in));
  tu_set_buffer(tx, out, sizeof(out));
  ck_assert_asock(tu_receive_from(p.b, tx), 0);
  ck_assert_uint_eq(asock_op_bytes(tx), sizeof(out));
  ck_assert_uint_eq(asock_op_msg_flags(tx), ASOCK_MSG_TRUNCATED);
  uu_pair_close(&p);
}

START_TEST(udp_round_trip_ipv4) { round_trip("127.0.0.1"); }
END_TEST

START_TEST(udp_round_trip_ipv6) {
  if (!tu_ipv6_available())
    return;
  round_trip("::1");
}
END_TEST

/* A buffer-less receive takes a slice only when a datagram is there, and
 * gives it back while it waits again. */
START_TEST(udp_on_demand_slice) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[100];
  asock_pool_stats st;

  uu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_PENDING);
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);

  tu_fill(out, sizeof(out), 3, 0);
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_rec(rx)->status, 0);
  ck_assert_int_eq(asock_op_buffer_mode(rx), ASOCK_BUFFER_SLICE);
  ck_assert_uint_eq(asock_op_offset(rx), 0);
  ck_assert_uint_eq(asock_op_count(rx), sizeof(out));
  ck_assert_uint_eq(asock_op_capacity(rx), asock_pool_slice_size(tu_pool));
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), sizeof(out), 3, 0),
                    sizeof(out));
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 1);

  /* Waiting again, it holds none. */
  ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_PENDING);
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 0);
  ck_assert_int_eq(asock_op_buffer_mode(rx), ASOCK_BUFFER_NONE);

  /* A datagram larger than a slice comes truncated to the slice. */
  {
    size_t slice = asock_pool_slice_size(tu_pool);
    unsigned char *big = malloc(slice + 904);
    tu_fill(big, slice + 904, 4, 0);
    uu_send(p.a, tx, big, slice + 904, &p.b_addr);
    ck_assert(tu_wait_calls(rx, 2));
    ck_assert_asock(tu_rec(rx)->status, 0);
    ck_assert_uint_eq(tu_rec(rx)->bytes, slice);
    ck_assert_uint_eq(asock_op_msg_flags(rx), ASOCK_MSG_TRUNCATED);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), slice, 4, 0), slice);
    free(big);
  }
  ck_assert_asock(asock_op_clear_buffer(rx), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 0);
  uu_pair_close(&p);
}
END_TEST

/* The bytes that fit, the flag, and the next datagram whole. */
START_TEST(udp_truncation) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[100];
  unsigned char in[11];

  uu_pair_open(&p, "127.0.0.1");
  tu_fill(out, sizeof(out), 5, 0);
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  uu_send(p.a, tx, out, 10, &p.b_addr);
  memset(in, 0xee, sizeof(in));
  ck_assert_asock(asock_op_set_buffer(rx, in, sizeof(in), 0, 10), 0);
  ck_assert_asock(tu_receive_from(p.b, rx), 0);
  ck_assert_asock(asock_op_status(rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), 10);
  ck_assert_uint_eq(asock_op_msg_flags(rx), ASOCK_MSG_TRUNCATED);
  ck_assert_uint_eq(tu_mismatch(in, 10, 5, 0), 10);
  ck_assert_int_eq(in[10], 0xee);

  ck_assert_asock(tu_receive_from(p.b, rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), 10);
  ck_assert_uint_eq(asock_op_msg_flags(rx), 0);
  ck_assert_uint_eq(tu_mismatch(in, 10, 5, 0), 10);
  uu_pair_close(&p);
}
END_TEST

/* A buffer list leaves as one datagram. */
START_TEST(udp_gather_send) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[90];
  unsigned char in[128];
  asock_buf bufs[3];

  uu_pair_open(&p, "127.0.0.1");
  tu_fill(out, sizeof(out), 6, 0);
  bufs[0].base = out;
  bufs[0].len = 1;
  bufs[1].base = out + 1;
  bufs[1].len = 0;
  bufs[2].base = out + 1;
  bufs[2].len = 89;
  ck_assert_asock(asock_op_set_buffer_list(tx, bufs, 3), 0);
  ck_assert_asock(asock_op_set_remote(tx, (struct sockaddr *)&p.b_addr), 0);
  ck_assert_asock(tu_send_to(p.a, tx), 0);
  ck_assert_uint_eq(asock_op_bytes(tx), 90);
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert_asock(tu_receive_from(p.b, rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), 90);
  ck_assert_uint_eq(tu_mismatch(in, 90, 6, 0), 90);
  /* The entries are read when a send starts: changed into what the list
   * would have been refused with, they refuse the send. */
  bufs[1].base = NULL;
  bufs[1].len = 1;
  ck_assert_asock(tu_send_to(p.a, tx), ASOCK_EINVAL);
  bufs[1].base = out + 1;
  bufs[1].len = SIZE_MAX;
  ck_assert_asock(tu_send_to(p.a, tx), ASOCK_EBOUNDS);
  ck_assert_int_eq(asock_op_is_pending(tx), 0);
  uu_pair_close(&p);
}
END_TEST

/* The destination and interface of each datagram, as the receiver sees
 * them on a wildcard-bound socket. */
static void packet_info(const char *any, const char *dest) {
  asock_socket *r;
  asock_socket *s;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage bind_addr;
  struct sockaddr_storage r_addr;
  struct sockaddr_storage to;
  struct sockaddr_storage want;
  struct sockaddr_storage got;
  unsigned int ifindex = 12345;
  unsigned char out[40];

  tu_addr(any, 0, &bind_addr);
  r = uu_bound(&bind_addr, 0, &r_addr);
  tu_addr(dest, tu_port(&r_addr), &to);
  s = uu_sender(to.ss_family);
  tu_fill(out, sizeof(out), 7, 0);

  ck_assert_asock(tu_receive_message_from(r, rx), ASOCK_PENDING);
  uu_send(s, tx, out, sizeof(out), &to);
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_rec(rx)->status, 0);
  ck_assert_int_eq(tu_rec(rx)->kind, ASOCK_OP_RECEIVEMESSAGEFROM);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), sizeof(out), 7, 0),
                    sizeof(out));
  ck_assert_asock(asock_op_packet_info(rx, &got, &ifindex), 0);
  tu_addr(dest, tu_port(&r_addr), &want);
  ck_assert_msg(tu_same_addr((struct sockaddr *)&got, (struct sockaddr *)&want),
                "packet info gives another destination");
  ck_assert_uint_ne(ifindex, 0);
#ifndef _WIN32
  ck_assert_uint_eq(ifindex, if_nametoindex("lo"));
#endif
  ck_assert_asock(asock_op_packet_info(rx, NULL, NULL), 0);

  /* Synchronously, too; and a receive-from has no packet information. */
  uu_send(s, tx, out, sizeof(out), &to);
  ifindex = 0;
  ck_assert_asock(tu_receive_message_from(r, rx), 0);
  ck_assert_asock(asock_op_packet_info(rx, &got, &ifindex), 0);
  ck_assert(tu_same_addr((struct sockaddr *)&got, (struct sockaddr *)&want));
  ck_assert_uint_ne(ifindex, 0);
  uu_send(s, tx, out, sizeof(out), &to);
  ck_assert_asock(tu_receive_from(r, rx), 0);
  ck_assert_asock(asock_op_packet_info(rx, &got, &ifindex), ASOCK_EKIND);
  ck_assert_asock(asock_op_packet_info(NULL, &got, &ifindex), ASOCK_EINVAL);
  ck_assert_asock(tu_close(r, 0), 0);
  ck_assert_asock(tu_close(s, 0), 0);
}

START_TEST(udp_packet_info_ipv4) {
  packet_info("0.0.0.0", "127.0.0.1");
#ifdef __linux__
  /* Linux answers all of 127/8 on lo: the info tells them apart. */
  packet_info("0.0.0.0", "127.0.0.2");
#endif
}
END_TEST

START_TEST(udp_packet_info_ipv6) {
  if (!tu_ipv6_available())
    return;
  packet_info("::", "::1");
}
END_TEST

/* An IPv4 peer on a dual-stack IPv6 socket, both ways. */
/* A dual-stack socket (six, bound to ::) and an IPv4 one (four, on
 * 127.0.0.1); `to` is six's port on 127.0.0.1. */
static void dual_stack_open(asock_socket **six,
                            struct sockaddr_storage *six_addr,
                            asock_socket **four,
                            struct sockaddr_storage *four_addr,
                            struct sockaddr_storage *to) {
  struct sockaddr_storage any6;
  tu_addr("::", 0, &any6);
  *six = uu_bound(&any6, 0, six_addr);
  tu_addr("127.0.0.1", tu_port(six_addr), to);
  tu_addr("127.0.0.1", 0, four_addr);
  *four = uu_bound(four_addr, 0, four_addr);
}

START_TEST(udp_dual_stack) {
  asock_socket *six;
  asock_socket *four;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage six_addr;
  struct sockaddr_storage to;
  struct sockaddr_storage four_addr;
  unsigned char out[20];
  unsigned char in[64];

  if (!tu_ipv6_available())
    return;
  dual_stack_open(&six, &six_addr, &four, &four_addr, &to);
  tu_fill(out, sizeof(out), 8, 0);
  memset(in, 0, sizeof(in));
  uu_send(four, tx, out, sizeof(out), &to);
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert(uu_receive_one(six, rx));
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(out));
  ck_assert_int_eq(asock_op_remote(rx)->sa_family, AF_INET6);
  /* The IPv4-mapped sender answers; so does a plain IPv4 address. */
  ck_assert_asock(tu_send_to(six, rx), 0);
  ck_assert(uu_receive_one(four, rx));
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(in));
  uu_send(six, tx, out, sizeof(out), &four_addr);
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert(uu_receive_one(four, rx));
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(out));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(out), 8, 0), sizeof(out));
  ck_assert_asock(tu_close(six, 0), 0);
  ck_assert_asock(tu_close(four, 0), 0);
}
END_TEST

/* On a dual-stack socket an IPv4 datagram names both ends IPv4-mapped: the
 * sender, and the destination its packet information gives. */
START_TEST(udp_dual_stack_packet_info) {
  asock_socket *six;
  asock_socket *four;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage six_addr;
  struct sockaddr_storage to;
  struct sockaddr_storage four_addr;
  struct sockaddr_storage want;
  struct sockaddr_storage got;
  unsigned int ifindex = 0;
  unsigned char out[24];

  if (!tu_ipv6_available())
    return;
  dual_stack_open(&six, &six_addr, &four, &four_addr, &to);
  tu_fill(out, sizeof(out), 11, 0);

  ck_assert_asock(tu_receive_message_from(six, rx), ASOCK_PENDING);
  uu_send(four, tx, out, sizeof(out), &to);
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_rec(rx)->status, 0);
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(out));
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), sizeof(out), 11, 0),
                    sizeof(out));
  tu_addr("::ffff:127.0.0.1", tu_port(&four_addr), &want);
  ck_assert_msg(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&want),
                "the IPv4 sender is not given IPv4-mapped");
  ck_assert_asock(asock_op_packet_info(rx, &got, &ifindex), 0);
  tu_addr("::ffff:127.0.0.1", tu_port(&six_addr), &want);
  ck_assert_int_eq(got.ss_family, AF_INET6);
  ck_assert_msg(tu_same_addr((struct sockaddr *)&got, (struct sockaddr *)&want),
                "the IPv4 destination is not given IPv4-mapped");
  ck_assert_uint_ne(ifindex, 0);
#ifndef _WIN32
  ck_assert_uint_eq(ifindex, if_nametoindex("lo"));
#endif
  ck_assert_asock(tu_close(six, 0), 0);
  ck_assert_asock(tu_close(four, 0), 0);
}
END_TEST

/* A default peer: send-to without an address goes there, only its
 * datagrams arrive, and removing it restores both. */
START_TEST(udp_default_peer) {
  uu_pair p;
  asock_socket *c;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage c_addr;
  struct sockaddr_storage peer;
  int len = (int)sizeof(peer);
  unsigned char out[30];
  unsigned char in[64];

  uu_pair_open(&p, "127.0.0.1");
  tu_addr("127.0.0.1", 0, &c_addr);
  c = uu_bound(&c_addr, 0, &c_addr);
  ck_assert_asock(
      asock_socket_remote_address(p.a, (struct sockaddr *)&peer, &len),
      ASOCK_ENOTCONN);
  ck_assert_asock(asock_udp_connect(p.a, (struct sockaddr *)&p.b_addr), 0);
  len = (int)sizeof(peer);
  ck_assert_asock(
      asock_socket_remote_address(p.a, (struct sockaddr *)&peer, &len), 0);
  ck_assert(
      tu_same_addr((struct sockaddr *)&peer, (struct sockaddr *)&p.b_addr));

  /* Without an address; and an op's own address is not used. */
  tu_fill(out, sizeof(out), 9, 0);
  tu_set_buffer(tx, out, sizeof(out));
  ck_assert_asock(tu_send_to(p.a, tx), 0);
  ck_assert_asock(asock_op_set_remote(tx, (struct sockaddr *)&c_addr), 0);
  ck_assert_asock(tu_send_to(p.a, tx), 0);
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert(uu_receive_one(p.b, rx));
  ck_assert(uu_receive_one(p.b, rx));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(out), 9, 0), sizeof(out));

  /* A stranger's datagram is not received; the peer's is. */
  uu_send(c, tx, out, 5, &p.a_addr);
  uu_send(p.b, tx, out, 7, &p.a_addr);
  ck_assert(uu_receive_one(p.a, rx));
  ck_assert_uint_eq(asock_op_bytes(rx), 7);
  ck_assert(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&p.b_addr));

  ck_assert_asock(asock_udp_connect(p.a, NULL), 0);
  ck_assert_asock(asock_udp_connect(p.a, NULL), ASOCK_ENOTCONN);
  ck_assert_asock(asock_op_clear_buffer(tx), 0);
  tu_set_buffer(tx, out, 3);
  ck_assert_asock(asock_op_set_remote(tx, (struct sockaddr *)&c_addr), 0);
  ck_assert_asock(tu_send_to(p.a, tx), 0);
  ck_assert(uu_receive_one(c, rx));
  ck_assert_uint_eq(asock_op_bytes(rx), 3);
  /* Linux gives a socket bound to port 0 a new port when the association
   * goes: the sender is wherever the socket is now. */
  len = (int)sizeof(peer);
  ck_assert_asock(
      asock_socket_local_address(p.a, (struct sockaddr *)&peer, &len), 0);
  ck_assert(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&peer));
  ck_assert_asock(tu_close(c, 0), 0);
  uu_pair_close(&p);
}
END_TEST

/* A send-to on an unbound socket binds it to the wildcard address. */
START_TEST(udp_send_binds) {
  asock_socket *s;
  asock_socket *r;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage r_addr;
  struct sockaddr_storage sender_addr;
  int len = (int)sizeof(sender_addr);
  unsigned char out[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  unsigned char in[8];

  tu_addr("127.0.0.1", 0, &r_addr);
  r = uu_bound(&r_addr, 0, &r_addr);
  ck_assert_asock(asock_udp_create(&s, tu_loop), 0);
  uu_send(s, tx, out, sizeof(out), &r_addr);
  ck_assert_asock(
      asock_socket_local_address(s, (struct sockaddr *)&sender_addr, &len), 0);
  ck_assert_int_eq(sender_addr.ss_family, AF_INET);
  ck_assert_uint_ne(tu_port(&sender_addr), 0);
  tu_set_buffer(rx, in, sizeof(in));
  ck_assert(uu_receive_one(r, rx));
  ck_assert_int_eq(memcmp(in, out, sizeof(out)), 0);
  ck_assert_uint_eq(
      tu_port((const struct sockaddr_storage *)asock_op_remote(rx)),
      tu_port(&sender_addr));
  /* Now bound, it receives. */
  ck_assert_asock(tu_send_to(r, rx), 0);
  ck_assert(uu_receive_one(s, rx));
  ck_assert_int_eq(memcmp(in, out, sizeof(out)), 0);
  ck_assert_asock(tu_close(s, 0), 0);
  ck_assert_asock(tu_close(r, 0), 0);
}
END_TEST

START_TEST(udp_options) {
  uu_pair p;
  struct sockaddr_storage lo;
  int size = 0;

  uu_pair_open(&p, "127.0.0.1");
  tu_addr("127.0.0.1", 0, &lo);
  ck_assert_asock(asock_udp_set_broadcast(p.a, 1), 0);
  ck_assert_asock(asock_udp_set_broadcast(p.a, 0), 0);
  ck_assert_asock(asock_udp_set_ttl(p.a, 1), 0);
  ck_assert_asock(asock_udp_set_ttl(p.a, 255), 0);
  ck_assert_asock(asock_udp_set_multicast_ttl(p.a, 0), 0);
  ck_assert_asock(asock_udp_set_multicast_ttl(p.a, 255), 0);
  ck_assert_asock(asock_udp_set_multicast_loop(p.a, 0), 0);
  ck_assert_asock(asock_udp_set_multicast_loop(p.a, 1), 0);
  ck_assert_asock(asock_udp_set_multicast_interface(p.a, NULL), 0);
  ck_assert_asock(
      asock_udp_set_multicast_interface(p.a, (struct sockaddr *)&lo), 0);
  ck_assert_asock(asock_socket_recv_buffer_size(p.a, &size), 0);
  ck_assert_int_gt(size, 0);
  size = 0;
  ck_assert_asock(asock_socket_send_buffer_size(p.a, &size), 0);
  ck_assert_int_gt(size, 0);
  /* TCP's own options are not for it. */
  ck_assert_asock(asock_socket_set_nodelay(p.a, 1), ASOCK_EKIND);
  ck_assert_asock(asock_socket_set_keepalive(p.a, 1, 1), ASOCK_EKIND);
  uu_pair_close(&p);
}
END_TEST

/* Multicast over loopback: a member receives the group's datagrams, and
 * after leaving it does not. */
START_TEST(udp_multicast_loopback) {
  asock_socket *member;
  asock_socket *sender;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  struct sockaddr_storage any;
  struct sockaddr_storage m_addr;
  struct sockaddr_storage group;
  struct sockaddr_storage lo;
  unsigned char out[12];
  int r;

  tu_addr("0.0.0.0", 0, &any);
  member = uu_bound(&any, ASOCK_UDP_REUSEADDR, &m_addr);
  tu_addr("239.255.42.99", tu_port(&m_addr), &group);
  tu_addr("127.0.0.1", 0, &lo);
  r = asock_udp_set_membership(member, (struct sockaddr *)&group,
                               (struct sockaddr *)&lo, 1);
  if (r != 0) {
    /* No multicast on this host's loopback: the refusal is a clean code. */
    ck_assert_int_lt(r, 0);
    ck_assert_asock(tu_close(member, 0), 0);
    return;
  }
  ck_assert_asock(asock_udp_set_membership(member, (struct sockaddr *)&group,
                                           (struct sockaddr *)&lo, 1),
                  ASOCK_EADDRINUSE);
  sender = uu_sender(AF_INET);
  ck_assert_asock(
      asock_udp_set_multicast_interface(sender, (struct sockaddr *)&lo), 0);
  ck_assert_asock(asock_udp_set_multicast_loop(sender, 1), 0);
  ck_assert_asock(asock_udp_set_multicast_ttl(sender, 1), 0);

  tu_fill(out, sizeof(out), 10, 0);
  ck_assert_asock(tu_receive_message_from(member, rx), ASOCK_PENDING);
  uu_send(sender, tx, out, sizeof(out), &group);
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_rec(rx)->status, 0);
  ck_assert_uint_eq(tu_rec(rx)->bytes, sizeof(out));
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), sizeof(out), 10, 0),
                    sizeof(out));
  {
    struct sockaddr_storage dest;
    ck_assert_asock(asock_op_packet_info(rx, &dest, NULL), 0);
    ck_assert(
        tu_same_addr((struct sockaddr *)&dest, (struct sockaddr *)&group));
  }

  ck_assert_asock(asock_udp_set_membership(member, (struct sockaddr *)&group,
                                           (struct sockaddr *)&lo, 0),
                  0);
  ck_assert_asock(asock_udp_set_membership(member, (struct sockaddr *)&group,
                                           (struct sockaddr *)&lo, 0),
                  ASOCK_EADDRNOTAVAIL);
  ck_assert_asock(tu_receive_from(member, rx), ASOCK_PENDING);
  uu_send(sender, tx, out, sizeof(out), &group);
  tu_run_for(100);
  ck_assert_int_eq(tu_rec(rx)->calls, 1);
  ck_assert_asock(tu_close(member, 0), 0);
  ck_assert(tu_wait_calls(rx, 2));
  ck_assert_asock(tu_rec(rx)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_close(sender, 0), 0);
}
END_TEST

Suite *asock_test_suite_udp_basic(void) {
  Suite *s = suite_create("udp_basic");
  TCase *tc = tcase_create("udp_basic");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, udp_refuses_bad_input);
  tcase_add_test(tc, udp_round_trip_ipv4);
  tcase_add_test(tc, udp_round_trip_ipv6);
  tcase_add_test(tc, udp_on_demand_slice);
  tcase_add_test(tc, udp_truncation);
  tcase_add_test(tc, udp_gather_send);
  tcase_add_test(tc, udp_packet_info_ipv4);
  tcase_add_test(tc, udp_packet_info_ipv6);
  tcase_add_test(tc, udp_dual_stack);
  tcase_add_test(tc, udp_dual_stack_packet_info);
  tcase_add_test(tc, udp_default_peer);
  tcase_add_test(tc, udp_send_binds);
  tcase_add_test(tc, udp_options);
  tcase_add_test(tc, udp_multicast_loopback);
  suite_add_tcase(s, tc);
  return s;
}

/* TCP over loopback, a socket's setup before it connects or listens: the
 * options set before it has an OS socket, kept and set on the one made for
 * the connect or the listen; a bind before the connect and before the
 * listen; the bind flags; the OS socket and the option pass-through. */
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#include "tcp-util.h"

/* An int option read through asock_socket_get_option(). Some systems give
 * a boolean option back in one byte (Wine): the rest stays 0. */
static int get_int(asock_socket *sock, int level, int name) {
  int value = 0;
  size_t len = sizeof(value);
  ck_assert_asock(asock_socket_get_option(sock, level, name, &value, &len), 0);
  ck_assert_uint_ge(len, 1);
  ck_assert_uint_le(len, sizeof(value));
  return value;
}

/* Set before the OS socket exists, the options are kept, read back as
 * set, and find the OS socket the connect makes. */
START_TEST(options_before_connect_reach_the_os_socket) {
  struct sockaddr_storage laddr, ss;
  asock_socket *listener = tu_listen("127.0.0.1", &laddr), *sock, *server;
  asock_op *cop = tu_op(), *aop = tu_op();
  uv_os_sock_t os;
  int len = (int)sizeof(ss);
  int value = 0;
  size_t vlen = sizeof(value);

  ck_assert_asock(asock_tcp_create(&sock, tu_loop), 0);
  /* Nothing to read yet, and no OS socket. */
  ck_assert_asock(asock_socket_send_buffer_size(sock, &value), ASOCK_ENOTCONN);
  ck_assert_asock(asock_socket_fileno(sock, &os), ASOCK_ENOTCONN);
  ck_assert_asock(
      asock_socket_get_option(sock, SOL_SOCKET, SO_SNDBUF, &value, &vlen),
      ASOCK_ENOTCONN);
  ck_assert_asock(
      asock_socket_local_address(sock, (struct sockaddr *)&ss, &len),
      ASOCK_ENOTCONN);
  /* Kept. */
  ck_assert_asock(asock_socket_set_nodelay(sock, 1), 0);
  ck_assert_asock(asock_socket_set_keepalive(sock, 1, 31), 0);
  ck_assert_asock(asock_socket_set_keepalive_probes(sock, 7, 4), 0);
  value = 40000;
  ck_assert_asock(asock_socket_send_buffer_size(sock, &value), 0);
  value = 0;
  ck_assert_asock(asock_socket_send_buffer_size(sock, &value), 0);
  ck_assert_int_eq(value, 40000);
  value = 50000;
  ck_assert_asock(asock_socket_recv_buffer_size(sock, &value), 0);
  /* The connect makes the OS socket with them. */
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&laddr), 0);
  ck_assert_asock(tu_connect(sock, cop), ASOCK_PENDING);
  server = tu_accept_done(listener, aop);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  ck_assert_asock(asock_socket_fileno(sock, &os), 0);
  ck_assert_int_ne(get_int(sock, IPPROTO_TCP, TCP_NODELAY), 0);
  ck_assert_int_ne(get_int(sock, SOL_SOCKET, SO_KEEPALIVE), 0);
#ifdef __linux__
  ck_assert_int_eq(get_int(sock, IPPROTO_TCP, TCP_KEEPIDLE), 31);
  ck_assert_int_eq(get_int(sock, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  ck_assert_int_eq(get_int(sock, IPPROTO_TCP, TCP_KEEPCNT), 4);
  ck_assert_int_eq(get_int(sock, SOL_SOCKET, SO_SNDBUF), 2 * 40000);
  ck_assert_int_eq(get_int(sock, SOL_SOCKET, SO_RCVBUF), 2 * 50000);
#else
  ck_assert_int_ge(get_int(sock, SOL_SOCKET, SO_SNDBUF), 40000);
#endif
  /* Set after, they go to the OS socket at once. */
  ck_assert_asock(asock_socket_set_nodelay(sock, 0), 0);
  ck_assert_int_eq(get_int(sock, IPPROTO_TCP, TCP_NODELAY), 0);
  tu_send_all(sock, "set", 3);
  {
    char buf[3];
    tu_recv_exact(server, buf, 3);
    ck_assert_int_eq(memcmp(buf, "set", 3), 0);
  }
  ck_assert_asock(tu_close(sock, 0), 0);
  ck_assert_asock(tu_close(server, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* A socket bound first has its address before it connects, and connects
 * from it; another bound first listens where it is bound. */
START_TEST(bind_before_connect_and_listen) {
  struct sockaddr_storage any, laddr, local, peer;
  asock_socket *lsock, *client, *server;
  asock_op *cop = tu_op(), *aop = tu_op();
  int len = (int)sizeof(local);

  tu_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_tcp_create(&lsock, tu_loop), 0);
  ck_assert_asock(asock_socket_set_nodelay(lsock, 1), 0);
  ck_assert_asock(asock_tcp_listen(lsock, NULL, 16, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_bind(lsock, (struct sockaddr *)&any, 0), 0);
  ck_assert_asock(asock_tcp_bind(lsock, (struct sockaddr *)&any, 0),
                  ASOCK_EKIND);
  ck_assert_asock(asock_tcp_listen(lsock, (struct sockaddr *)&any, 16, 0),
                  ASOCK_EKIND);
  ck_assert_asock(
      asock_socket_local_address(lsock, (struct sockaddr *)&laddr, &len), 0);
  ck_assert_uint_ne(tu_port(&laddr), 0);
  ck_assert_asock(asock_tcp_listen(lsock, NULL, 16, 0), 0);
  ck_assert_asock(asock_tcp_bind(lsock, (struct sockaddr *)&any, 0),
                  ASOCK_EKIND);

  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_tcp_bind(client, (struct sockaddr *)&any, 0), 0);
  len = (int)sizeof(local);
  ck_assert_asock(
      asock_socket_local_address(client, (struct sockaddr *)&local, &len), 0);
  ck_assert_uint_ne(tu_port(&local), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&laddr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  server = tu_accept_done(lsock, aop);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  len = (int)sizeof(peer);
  ck_assert_asock(
      asock_socket_remote_address(server, (struct sockaddr *)&peer, &len), 0);
  ck_assert(tu_same_addr((struct sockaddr *)&peer, (struct sockaddr *)&local));
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(server, 0), 0);
  ck_assert_asock(tu_close(lsock, 0), 0);
}
END_TEST

/* The bind's flags and refusals; a port held without sharing refuses an
 * exclusive bind, and a failed bind leaves the socket as it was. */
START_TEST(bind_flags_and_refusals) {
  struct sockaddr_storage any, held, six;
  asock_socket *a, *b, *u;
  int len = (int)sizeof(held);
  uv_os_sock_t os;

  tu_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_tcp_create(&a, tu_loop), 0);
  ck_assert_asock(asock_tcp_create(&b, tu_loop), 0);
  ck_assert_asock(asock_udp_create(&u, tu_loop), 0);
  ck_assert_asock(asock_tcp_bind(NULL, (struct sockaddr *)&any, 0),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_bind(a, NULL, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_bind(a, (struct sockaddr *)&any, 0x80),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_bind(a, (struct sockaddr *)&any,
                                 ASOCK_BIND_REUSEADDR | ASOCK_BIND_EXCLUSIVE),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_bind(u, (struct sockaddr *)&any, 0), ASOCK_EKIND);
  ck_assert_asock(
      asock_tcp_bind(a, (struct sockaddr *)&any, ASOCK_BIND_EXCLUSIVE), 0);
  ck_assert_asock(asock_socket_local_address(a, (struct sockaddr *)&held, &len),
                  0);
  ck_assert_asock(
      asock_tcp_bind(b, (struct sockaddr *)&held, ASOCK_BIND_EXCLUSIVE),
      ASOCK_EADDRINUSE);
  /* Refused, b is as it was made. */
  ck_assert_asock(asock_socket_fileno(b, &os), ASOCK_ENOTCONN);
  ck_assert_asock(asock_tcp_bind(b, (struct sockaddr *)&any, 0), 0);
  /* IPv6-only, where the host has IPv6. */
  if (tu_ipv6_available()) {
    asock_socket *c;
    tu_addr("::1", 0, &six);
    ck_assert_asock(asock_tcp_create(&c, tu_loop), 0);
    ck_assert_asock(
        asock_tcp_bind(c, (struct sockaddr *)&six, ASOCK_BIND_IPV6ONLY), 0);
    ck_assert_asock(tu_close(c, 0), 0);
  }
  ck_assert_asock(tu_close(a, 0), 0);
  ck_assert_asock(tu_close(b, 0), 0);
  ck_assert_asock(tu_close(u, 0), 0);
}
END_TEST

/* The OS socket and the options asock does not name. */
START_TEST(os_socket_and_option_pass_through) {
  tu_pair p;
  uv_os_sock_t os;
  int on = 1, value = 0;
  size_t len = sizeof(value);

  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_socket_fileno(NULL, &os), ASOCK_EINVAL);
  ck_assert_asock(asock_socket_fileno(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_socket_fileno(p.client, &os), 0);
  ck_assert_asock(asock_socket_set_option(p.client, SOL_SOCKET, SO_KEEPALIVE,
                                          &on, sizeof(on)),
                  0);
  ck_assert_int_ne(get_int(p.client, SOL_SOCKET, SO_KEEPALIVE), 0);
  ck_assert_asock(
      asock_socket_set_option(p.client, SOL_SOCKET, SO_KEEPALIVE, NULL, 4),
      ASOCK_EINVAL);
  ck_assert_asock(
      asock_socket_set_option(p.client, SOL_SOCKET, SO_KEEPALIVE, &on, 0),
      ASOCK_EINVAL);
  ck_assert_asock(
      asock_socket_get_option(p.client, SOL_SOCKET, SO_KEEPALIVE, &value, NULL),
      ASOCK_EINVAL);
  /* The OS's refusal is its code. */
  len = sizeof(value);
  ck_assert_int_lt(
      asock_socket_get_option(p.client, 0x7654, 0x7654, &value, &len), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

#ifdef __linux__
/* An option the OS refuses when the OS socket is made fails the start that
 * made it, and leaves the socket as it was. Linux takes TCP_KEEPINTVL up to
 * 32767 seconds. */
START_TEST(a_kept_option_the_os_refuses_fails_the_start) {
  struct sockaddr_storage any;
  asock_socket *sock;
  asock_op *cop = tu_op();

  tu_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_tcp_create(&sock, tu_loop), 0);
  ck_assert_asock(asock_socket_set_keepalive_probes(sock, 0x7fffffffu, 0), 0);
  ck_assert_asock(asock_tcp_bind(sock, (struct sockaddr *)&any, 0),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&any), 0);
  ck_assert_asock(tu_connect(sock, cop), ASOCK_EINVAL);
  ck_assert_int_eq(tu_rec(cop)->calls, 0);
  ck_assert_asock(tu_close(sock, 0), 0);
}
END_TEST
#endif

Suite *asock_test_suite_tcp_setup(void) {
  Suite *s = suite_create("tcp_setup");
  TCase *tc = tcase_create("tcp_setup");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, options_before_connect_reach_the_os_socket);
  tcase_add_test(tc, bind_before_connect_and_listen);
  tcase_add_test(tc, bind_flags_and_refusals);
  tcase_add_test(tc, os_socket_and_option_pass_through);
#ifdef __linux__
  tcase_add_test(tc, a_kept_option_the_os_refuses_fails_the_start);
#endif
  suite_add_tcase(s, tc);
  return s;
}

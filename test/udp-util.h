/* What the UDP loopback tests share, on top of tcp-util.h's pool, loop,
 * recorded ops and patterns. */
#ifndef ASOCK_TEST_UDP_UTIL_H
#define ASOCK_TEST_UDP_UTIL_H

#include "tcp-util.h"

/* Two UDP sockets bound to the same loopback address, each on a port of
 * its own. */
typedef struct uu_pair {
  asock_socket *a;
  asock_socket *b;
  struct sockaddr_storage a_addr;
  struct sockaddr_storage b_addr;
} uu_pair;

void uu_pair_open(uu_pair *p, const char *ip);
void uu_pair_close(uu_pair *p);
/* A UDP socket bound to addr with flags; its address goes to out when out
 * is not NULL. */
asock_socket *uu_bound(const struct sockaddr_storage *addr, unsigned int flags,
                       struct sockaddr_storage *out);
/* A UDP socket bound to the loopback address of family, any port. */
asock_socket *uu_sender(int family);
/* Sends len bytes of buf as one datagram to `to` with op, waiting if the
 * send pends, and asserts that all of it left. */
void uu_send(asock_socket *sock, asock_op *op, const void *buf, size_t len,
             const struct sockaddr_storage *to);
/* Receives one datagram into op (as configured), waiting if the receive
 * pends. \return 1 if it completed with status 0. */
int uu_receive_one(asock_socket *sock, asock_op *op);

#endif /* ASOCK_TEST_UDP_UTIL_H */

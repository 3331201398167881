/* The one list of tests that cannot pass under Wine because of a limitation
 * of Wine itself, not of asock. They are left out of their suite only when
 * the Windows test executable runs under Wine (helpers.c asks ntdll for
 * wine_get_version); on real Windows, and everywhere else, they run. Each
 * entry names the test function and the exact limitation it hits.
 * docs/testing.md shows this list to readers in a table generated from it:
 * after a change, run scripts/gen-wine-skips --write docs/testing.md. */
#define ASOCK_WINE_SKIPS(XX)                                                   \
  XX(socket_options,                                                           \
     "Wine 8.0 fails setsockopt(IPPROTO_TCP, TCP_KEEPALIVE) with "             \
     "WSAENOPROTOOPT; libuv sets the keep-alive delay with it")                \
  XX(options_before_connect_reach_the_os_socket,                               \
     "Wine 8.0 fails setsockopt(IPPROTO_TCP, TCP_KEEPALIVE) with "             \
     "WSAENOPROTOOPT, and the keep-alive probes' options too")                 \
  XX(cancel_partial_send_resets_the_connection,                                \
     "Wine 8.0 ends a socket closed with SO_LINGER {1, 0} with a FIN, not "    \
     "a RST: the peer reads EOF instead of ECONNRESET")                        \
  XX(linger_zero_resets_and_loop_close_ends_lingering,                         \
     "Wine 8.0 ends a socket closed with SO_LINGER {1, 0} with a FIN, not "    \
     "a RST: the peer reads EOF instead of ECONNRESET")                        \
  XX(udp_default_peer,                                                         \
     "Wine 8.0 dissolves a UDP association with Linux's connect(AF_UNSPEC), "  \
     "which unbinds a socket bound to port 0; the wineserver then reports "    \
     "port 0 as the local address while the next datagram leaves from a new "  \
     "port (Windows keeps the socket bound)")                                  \
  XX(udp_multicast_loopback,                                                   \
     "Wine 8.0 turns Linux's EADDRNOTAVAIL from IP_DROP_MEMBERSHIP of a "      \
     "group not joined into WSAEINVAL")                                        \
  XX(udp_refused_peer,                                                         \
     "Wine 8.0's wineserver takes the ICMP port unreachable of a connected "   \
     "UDP socket (SO_ERROR, on POLLERR) for itself: no poll reports it and "   \
     "the next receive finds nothing, where Windows fails it with "            \
     "WSAECONNRESET")

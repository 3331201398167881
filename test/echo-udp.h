/* The UDP checks of asock-echo-check: `asock-echo --udp` over IPv4 and, where
 * the host has ::1, IPv6. */
#ifndef ASOCK_TEST_ECHO_UDP_H
#define ASOCK_TEST_ECHO_UDP_H

#include <stddef.h>

#include "echo-server.h"

extern const ec_check ec_udp_checks[];
extern const size_t ec_udp_check_count;

/* Stops what the UDP checks left running and closes their handles. */
void ec_udp_close(void);

#endif /* ASOCK_TEST_ECHO_UDP_H */

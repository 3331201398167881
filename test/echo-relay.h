/* The relay checks of asock-echo-check (`asock-echo-check --relay RELAY
 * ECHO`): asock-echo as the backend, the asock-relay example in front of
 * it, and every check's client talking to the relay. */
#ifndef ASOCK_TEST_ECHO_RELAY_H
#define ASOCK_TEST_ECHO_RELAY_H

#include <stddef.h>

#include "echo-server.h"

/* The asock-relay executable under test. */
extern const char *ec_relay_path;

extern const ec_check ec_relay_checks[];
extern const size_t ec_relay_check_count;

/* Stops what these checks left running and closes their handles. */
void ec_relay_close(void);

#endif /* ASOCK_TEST_ECHO_RELAY_H */

/* Declarations shared by asock's own source files, by concern: base.h
 * (hints, allocator, errors), pool.h, op.h, loop.h, socket.h, queue.h (ops
 * in socket queues and their completions), tcp.h, udp.h and backend.h (the seam
 * a platform's backend implements). Nothing here is part of the public
 * API; the tests link the internal archive to reach it. */
#ifndef ASOCK_INTERNAL_H
#define ASOCK_INTERNAL_H

#include "backend.h"

#endif /* ASOCK_INTERNAL_H */

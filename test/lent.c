/* tu_lent(): the one helper that reads asock's insides, in a file of its
 * own so that the helpers around it need only the public header. */
#include "internal.h"
#include "tcp-util.h"

size_t tu_lent(const asock_loop *loop) {
  return asock__load_u32_relaxed(&loop->slices_ringed);
}

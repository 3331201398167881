/* The library's own version, which a program linked against a shared asock
 * can compare with the header it was compiled with. */
#include "internal.h"

unsigned int asock_version(void) { return ASOCK_VERSION_HEX; }

const char *asock_version_string(void) { return ASOCK_VERSION_STRING; }

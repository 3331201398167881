/* Names and messages of the error codes, generated from ASOCK_ERRNO_MAP.
 * Neither function allocates: an unknown code gets a fixed string. */
#include "internal.h"

const char *asock_err_name(int err) {
  switch (err) {
#define ASOCK__ERR_NAME_CASE(name, value, msg)                                 \
  case ASOCK_##name:                                                           \
    return "ASOCK_" #name;
    ASOCK_ERRNO_MAP(ASOCK__ERR_NAME_CASE)
#undef ASOCK__ERR_NAME_CASE
  case 0:
    return "OK";
  default:
    return "ASOCK_UNKNOWN";
  }
}

const char *asock_strerror(int err) {
  switch (err) {
#define ASOCK__STRERROR_CASE(name, value, msg)                                 \
  case ASOCK_##name:                                                           \
    return msg;
    ASOCK_ERRNO_MAP(ASOCK__STRERROR_CASE)
#undef ASOCK__STRERROR_CASE
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

int asock__from_uv(int uv_err) {
  switch (uv_err) {
  case UV_ETIMEDOUT:
    return ASOCK_ETIMEDOUT;
  case UV_ECANCELED:
  case UV_EAI_CANCELED:
    return ASOCK_ECANCELED;
  case UV_EOF:
    return ASOCK_EOF;
  case UV_ENOBUFS:
    return ASOCK_ENOBUFS;
  default:
    return uv_err;
  }
}

/* Small language-level helpers shared by every layer. */
#ifndef FERRY_BASE_UTIL_H
#define FERRY_BASE_UTIL_H

#include <stddef.h>

#define FERRY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* From a pointer to a member back to the struct that embeds it (libuv
 * handles are embedded in ferry's connection structs). */
#define ferry_container_of(ptr, type, member)                                 \
  ((type *)((char *)(ptr)-offsetof(type, member)))

#endif

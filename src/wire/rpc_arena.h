/* Bump allocator for decoding one RPC packet.
 *
 * Decoded values (DLTensor headers and shapes, NUL-terminated copies of
 * strings, ferry_value arrays) live in an arena that the session resets at
 * every packet, so nothing decoded from the wire outlives the packet it
 * came from, and the memory a packet may pin is bounded by the arena's
 * ceiling (which the caller sets from the packet size ceiling). */
#ifndef FERRY_WIRE_RPC_ARENA_H
#define FERRY_WIRE_RPC_ARENA_H

#include <stddef.h>

#include "ferry/error.h"

struct ferry_rpc_arena_block;

typedef struct ferry_rpc_arena {
  struct ferry_rpc_arena_block *head; /* newest block first */
  size_t used;                        /* bytes handed out since the last reset */
  size_t max;                         /* ceiling on used */
} ferry_rpc_arena;

/* An empty arena that hands out at most max bytes between resets. */
void ferry_rpc_arena_init(ferry_rpc_arena *a, size_t max);
/* Frees every block. */
void ferry_rpc_arena_close(ferry_rpc_arena *a);
/* Forgets every allocation; keeps one block for reuse. */
void ferry_rpc_arena_reset(ferry_rpc_arena *a);
/* n bytes aligned to 16, zeroed; NULL when over the ceiling or out of
 * memory. */
void *ferry_rpc_arena_alloc(ferry_rpc_arena *a, size_t n);

#endif

/* Bump allocator for one packet's decoded values (see rpc_arena.h). */
#include "wire/rpc_arena.h"

#include <stdlib.h>
#include <string.h>

/* Blocks are at least this big so that a packet with many small values
 * costs few mallocs; the ceiling, not the block size, bounds memory. */
#define ARENA_BLOCK_MIN 4096

struct ferry_rpc_arena_block {
  struct ferry_rpc_arena_block *next;
  size_t size; /* bytes of data[] */
  size_t used;
  _Alignas(16) unsigned char data[];
};

void ferry_rpc_arena_init(ferry_rpc_arena *a, size_t max) {
  a->head = NULL;
  a->used = 0;
  a->max = max;
}

void ferry_rpc_arena_close(ferry_rpc_arena *a) {
  struct ferry_rpc_arena_block *b = a->head;
  while (b) {
    struct ferry_rpc_arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = 0;
}

void ferry_rpc_arena_reset(ferry_rpc_arena *a) {
  if (!a->head) {
    a->used = 0;
    return;
  }
  /* Keep the newest block (usually the largest), free the rest. */
  struct ferry_rpc_arena_block *keep = a->head, *b = keep->next;
  while (b) {
    struct ferry_rpc_arena_block *next = b->next;
    free(b);
    b = next;
  }
  keep->next = NULL;
  keep->used = 0;
  a->head = keep;
  a->used = 0;
}

void *ferry_rpc_arena_alloc(ferry_rpc_arena *a, size_t n) {
  size_t rounded = (n + 15u) & ~(size_t)15u;
  if (rounded < n || rounded > a->max - a->used || a->used > a->max)
    return NULL;
  struct ferry_rpc_arena_block *b = a->head;
  if (!b || b->size - b->used < rounded) {
    size_t size = rounded > ARENA_BLOCK_MIN ? rounded : ARENA_BLOCK_MIN;
    b = malloc(sizeof *b + size);
    if (!b)
      return NULL;
    b->size = size;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += rounded;
  a->used += rounded;
  memset(p, 0, n);
  return p;
}

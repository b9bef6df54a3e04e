/* Per-session handle table (see handles.h). */
#include "server/handles.h"

#include <stdlib.h>

/* Handle layout, high to low bits:
 *   16 bits  tag (constant: makes random 64-bit values unlikely to parse)
 *    8 bits  object type
 *   16 bits  generation of the slot
 *   24 bits  slot index + 1 (never 0, so no handle is 0) */
#define HANDLE_TAG 0xFE77u
#define INDEX_BITS 24
#define INDEX_LIMIT (1u << INDEX_BITS) /* exclusive bound on index + 1 */

struct ferry_handle_slot {
  ferry_obj *obj;       /* NULL when free */
  uint64_t client_refs; /* references the client holds */
  uint16_t gen;
  uint32_t next_free; /* 1-based, while free */
};

static uint64_t handle_make(uint32_t index, uint16_t gen, enum ferry_obj_type type) {
  return ((uint64_t)HANDLE_TAG << 48) | ((uint64_t)(type & 0xff) << 40) |
         ((uint64_t)gen << 24) | (uint64_t)(index + 1);
}

void ferry_handles_init(ferry_handles *h, uint32_t max) {
  h->slots = NULL;
  h->cap = h->len = h->live = 0;
  h->max = max && max < INDEX_LIMIT - 1 ? max : FERRY_HANDLES_DEFAULT_MAX;
  h->free_head = 0;
}

void ferry_handles_close(ferry_handles *h) {
  for (uint32_t i = 0; i < h->len; i++)
    if (h->slots[i].obj)
      ferry_obj_release(h->slots[i].obj);
  free(h->slots);
  ferry_handles_init(h, h->max);
}

int ferry_handles_put(ferry_handles *h, ferry_obj *obj, uint64_t *out) {
  /* The same object handed out again shares its slot: O(live) search, fine
   * for the tens of handles a session holds. */
  for (uint32_t i = 0; i < h->len; i++) {
    struct ferry_handle_slot *s = &h->slots[i];
    if (s->obj == obj) {
      s->client_refs++;
      ferry_obj_release(obj); /* the slot already holds one */
      *out = handle_make(i, s->gen, obj->type);
      return FERRY_OK;
    }
  }
  uint32_t index;
  if (h->free_head) {
    index = h->free_head - 1;
    h->free_head = h->slots[index].next_free;
  } else {
    if (h->len == h->cap) {
      if (h->cap >= h->max) {
        ferry_obj_release(obj);
        return FERRY_ETOOBIG;
      }
      uint32_t cap = h->cap ? h->cap * 2 : 16;
      if (cap > h->max)
        cap = h->max;
      struct ferry_handle_slot *slots = realloc(h->slots, sizeof *slots * cap);
      if (!slots) {
        ferry_obj_release(obj);
        return FERRY_ENOMEM;
      }
      h->slots = slots;
      h->cap = cap;
    }
    index = h->len++;
    h->slots[index].gen = 0;
  }
  struct ferry_handle_slot *s = &h->slots[index];
  s->obj = obj;
  s->client_refs = 1;
  s->next_free = 0;
  h->live++;
  *out = handle_make(index, s->gen, obj->type);
  return FERRY_OK;
}

/* The slot a handle names if it is live and of the type asked for. */
static struct ferry_handle_slot *slot_of(const ferry_handles *h, uint64_t handle,
                                         enum ferry_obj_type type) {
  uint64_t unvalidated = handle;
  if ((unvalidated >> 48) != HANDLE_TAG)
    return NULL;
  uint32_t index_plus_one = (uint32_t)(unvalidated & (INDEX_LIMIT - 1));
  if (index_plus_one == 0 || index_plus_one > h->len)
    return NULL;
  struct ferry_handle_slot *s = &h->slots[index_plus_one - 1];
  uint16_t gen = (uint16_t)(unvalidated >> 24);
  unsigned htype = (unsigned)((unvalidated >> 40) & 0xff);
  if (!s->obj || s->gen != gen || htype != (unsigned)s->obj->type)
    return NULL;
  if (type && s->obj->type != type)
    return NULL;
  return s;
}

int ferry_handles_get(const ferry_handles *h, uint64_t handle, enum ferry_obj_type type,
                      ferry_obj **out) {
  struct ferry_handle_slot *s = slot_of(h, handle, type);
  if (!s)
    return FERRY_EBADHANDLE;
  *out = s->obj;
  return FERRY_OK;
}

int ferry_handles_release(ferry_handles *h, uint64_t handle, enum ferry_obj_type type) {
  struct ferry_handle_slot *s = slot_of(h, handle, type);
  if (!s)
    return FERRY_EBADHANDLE;
  if (--s->client_refs > 0)
    return FERRY_OK;
  ferry_obj *obj = s->obj;
  s->obj = NULL;
  s->gen++;
  s->next_free = h->free_head;
  h->free_head = (uint32_t)(s - h->slots) + 1;
  h->live--;
  /* Release last: a destructor may not re-enter the table, but keeping the
   * table consistent first costs nothing. */
  ferry_obj_release(obj);
  return FERRY_OK;
}

int ferry_handles_find_ndarray_data(const ferry_handles *h, uint64_t data, uint64_t *out) {
  if (data == 0)
    return FERRY_EBADHANDLE;
  for (uint32_t i = 0; i < h->len; i++) {
    const struct ferry_handle_slot *s = &h->slots[i];
    if (!s->obj || s->obj->type != FERRY_OBJ_NDARRAY)
      continue;
    const DLTensor *t = &((const ferry_ndarray *)s->obj)->tensor;
    /* Compared with the pointer the client was sent (session_call.c). */
    if ((uint64_t)(uintptr_t)((const char *)t->data + t->byte_offset) == data) {
      *out = handle_make(i, s->gen, s->obj->type);
      return FERRY_OK;
    }
  }
  return FERRY_EBADHANDLE;
}

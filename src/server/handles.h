/* Per-session table of remote handles (rpc-session.md §2.6).
 *
 * The client only ever sees 64-bit values produced here: a tag, the kind,
 * a generation and a slot index packed together.  Nothing the client sends
 * is ever used as a pointer: a handle is looked up, its tag, kind and
 * generation checked, and only then is the object in the slot used.  A
 * released slot bumps its generation, so a stale handle (freed, or from an
 * earlier occupant of the slot) is refused without touching anything.
 *
 * Each slot holds one reference to its object and counts the client's
 * references: handing the same object out twice returns the same handle
 * with two client references, and the object is dropped from the table
 * when the client has released both (TVM's client releases once per
 * reference it received).  Handle 0 means "nothing". */
#ifndef FERRY_SERVER_HANDLES_H
#define FERRY_SERVER_HANDLES_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/object.h"

/* Default ceiling on live handles of one session. */
#define FERRY_HANDLES_DEFAULT_MAX 65536

struct ferry_handle_slot;

typedef struct ferry_handles {
  struct ferry_handle_slot *slots; /* owned */
  uint32_t cap;                    /* slots allocated */
  uint32_t len;                    /* slots ever used (free ones are reused) */
  uint32_t live;                   /* slots holding an object */
  uint32_t max;                    /* ceiling on cap */
  uint32_t free_head;              /* 1-based index of a free slot, 0 = none */
} ferry_handles;

void ferry_handles_init(ferry_handles *h, uint32_t max);
/* Releases every object still held (end of session) and frees the table. */
void ferry_handles_close(ferry_handles *h);

/* Hands the client one reference to obj (whose type gives the handle's
 * kind).  The table takes over the caller's reference *in every case*: on
 * success it is kept (or dropped when obj already had a slot, whose client
 * count is incremented instead); on failure (FERRY_ETOOBIG: table full;
 * FERRY_ENOMEM) it is released.  *out is the handle. */
int ferry_handles_put(ferry_handles *h, ferry_obj *obj, uint64_t *out) FERRY_MUST_CHECK;

/* The object of a live handle of the given type (borrowed: valid until the
 * handle is released), or FERRY_EBADHANDLE.  type 0 accepts any type. */
int ferry_handles_get(const ferry_handles *h, uint64_t handle, enum ferry_obj_type type,
                      ferry_obj **out) FERRY_MUST_CHECK;

/* Drops one client reference.  FERRY_EBADHANDLE (nothing touched) for a
 * handle that was never issued, was already released, or is of another
 * type (type 0 accepts any). */
int ferry_handles_release(ferry_handles *h, uint64_t handle,
                          enum ferry_obj_type type) FERRY_MUST_CHECK;

/* The handle of a live NDArray whose first element is at data (the data
 * pointer its kCallFunc return carried), or FERRY_EBADHANDLE.  TVM v0.21's
 * client releases a returned NDArray by that pointer (rpc-session.md
 * §7.2.8).  O(live), like put. */
int ferry_handles_find_ndarray_data(const ferry_handles *h, uint64_t data,
                                    uint64_t *out) FERRY_MUST_CHECK;

/* Number of live handles (for tests and leak checks). */
static inline uint32_t ferry_handles_live(const ferry_handles *h) {
  return h->live;
}

#endif

/* libFuzzer target: __tvm_dev_mblob parsing, with a stand-in loader that
 * consumes device-module payloads (string fmt, u64 fmap count that must be
 * 0, string data) so entries after a module are reached too. */
#include <stddef.h>
#include <stdint.h>

#include "wire/mblob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ferry_mblob_reader r;
  if (ferry_mblob_open(&r, data, size) != FERRY_OK)
    return 0;
  size_t nmods = 0;
  ferry_mblob_entry e, tree;
  int have_tree = 0;
  for (;;) {
    if (ferry_mblob_next(&r, &e) != FERRY_OK || e.kind == FERRY_MBLOB_END)
      break;
    if (e.kind == FERRY_MBLOB_IMPORT_TREE) {
      tree = e;
      have_tree = 1;
      continue;
    }
    nmods++;
    if (e.kind == FERRY_MBLOB_MODULE) {
      ferry_stream s;
      ferry_stream_init(&s, e.payload, e.payload_avail);
      const char *x;
      size_t n;
      uint64_t fmap;
      if (ferry_stream_str(&s, 1 << 20, &x, &n) || ferry_stream_u64(&s, &fmap) || fmap != 0 ||
          ferry_stream_str(&s, 1 << 30, &x, &n))
        break;
      if (ferry_mblob_skip(&r, s.pos) != FERRY_OK)
        __builtin_trap();
    }
  }
  if (have_tree && ferry_mblob_check_tree(&tree, nmods) == FERRY_OK) {
    /* A valid tree has only forward edges inside the module list. */
    for (size_t i = 0; i < tree.nchild; i++)
      if (ferry_mblob_u64(tree.child, i) >= nmods)
        __builtin_trap();
  }
  return 0;
}

/* libFuzzer target: what `ferry pack` does with its inputs.  The input is
 * split at its first NUL into a graph JSON and a parameter dict; the
 * consistency check runs on both, and whenever the dict is accepted the
 * module blob written from them must parse back with the blob reader. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire/mblob.h"
#include "wire/mblob_write.h"
#include "wire/pack_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t json_len = nul ? (size_t)(nul - data) : size;
  const uint8_t *params = nul ? nul + 1 : NULL;
  size_t params_len = nul ? size - json_len - 1 : 0;
  ferry_rpc_why why;
  ferry_rpc_why_clear(&why);
  size_t n;
  (void)ferry_pack_check((const char *)data, json_len, params, params_len, &n, &why);
  if (json_len == 0)
    return 0;
  ferry_buf blob;
  ferry_buf_init(&blob, 1 << 24);
  if (ferry_mblob_write_graph_factory(&blob, (const char *)data, json_len, params, params_len,
                                      "default") == FERRY_OK) {
    ferry_mblob_reader r;
    ferry_mblob_entry e;
    if (ferry_mblob_open(&r, blob.data, blob.len) != FERRY_OK ||
        ferry_mblob_next(&r, &e) != FERRY_OK || e.kind != FERRY_MBLOB_MODULE)
      __builtin_trap();
  }
  ferry_buf_close(&blob);
  return 0;
}

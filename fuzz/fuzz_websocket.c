/* libFuzzer target for the WebSocket codec: the first byte picks the HTTP
 * head parser or the frame decoder (server side, masked frames required,
 * small message bound so the bound is reached often); the input is fed in
 * pieces whose sizes come from the data itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/websocket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  int mode = data[0] & 1;
  size_t step = (size_t)data[1] + 1;
  data += 2;
  size -= 2;
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy)
    return 0;
  memcpy(copy, data, size);
  if (mode == 0) {
    ferry_http_request r;
    ferry_http_request_init(&r);
    size_t off = 0;
    int rc = FERRY_EAGAIN;
    while (off < size && rc == FERRY_EAGAIN) {
      size_t piece = size - off < step ? size - off : step, used = 0;
      rc = ferry_http_request_feed(&r, copy + off, piece, &used);
      if (used > piece)
        abort();
      off += used;
    }
    if (rc == 1) {
      (void)ferry_http_is_ws_upgrade(&r);
      (void)ferry_http_origin_allowed(&r);
      char accept[29];
      ferry_ws_accept_key(r.ws_key, accept);
    }
    ferry_http_request_close(&r);
  } else {
    ferry_ws_decoder d;
    ferry_ws_decoder_init(&d, 1, 4096);
    size_t off = 0;
    while (off < size) {
      size_t piece = size - off < step ? size - off : step, pos = 0;
      while (pos < piece) {
        size_t used = 0, len = 0;
        const uint8_t *out = NULL;
        int rc = ferry_ws_decode(&d, copy + off + pos, piece - pos, &used, &out, &len);
        if (used > piece - pos)
          abort();
        pos += used;
        if (rc == FERRY_EAGAIN)
          break;
        if (rc < 0) {
          free(copy);
          return 0;
        }
        if (rc == FERRY_WS_EV_DATA &&
            (out < copy + off || out + len > copy + off + pos))
          abort(); /* data must point into what was just consumed */
        if (len > 0 && out)
          (void)out[len - 1];
      }
      off += piece;
    }
  }
  free(copy);
  return 0;
}

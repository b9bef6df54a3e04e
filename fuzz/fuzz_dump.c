/* libFuzzer target for the `ferry dump` decoder: arbitrary bytes as the
 * two directions of one connection (the first byte picks the ceiling and
 * the chunking), then as a recording line.  Nothing may crash, leak or
 * grow past the ceilings, and with --json every line must be one valid
 * JSON object (ints read as reals: handles may pass INT64_MAX). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/dump.h"
#include "wire/dump_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json_lines(const ferry_buf *out) {
  const char *p = (const char *)out->data;
  const char *end = p + out->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      abort();
    json_t *o = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                           NULL);
    if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "text")))
      abort();
    json_decref(o);
    p = nl + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  o.max_decode = (data[0] & 1) ? 65536 : FERRY_DUMP_DEFAULT_MAX_DECODE;
  o.json = (data[0] >> 1) & 1;
  o.max_str = 1 + (data[0] >> 2);
  ferry_dump_conn c;
  ferry_dump_conn_init(&c, 1, &o);
  ferry_buf out;
  ferry_buf_init(&out, 1u << 20);
  /* Chunks of 1..16 bytes, the direction flipping with each chunk's
   * length parity, so both sides see arbitrary interleavings. */
  size_t off = 1;
  while (off < size) {
    size_t k = 1 + (data[off] & 15);
    int dir = (data[off] >> 4) & 1;
    off++;
    if (k > size - off)
      k = size - off;
    if (ferry_dump_conn_feed(&c, dir, 0.0, data + off, k, &out))
      break;
    if (o.json)
      check_json_lines(&out);
    off += k;
    out.len = 0;
  }
  (void)!ferry_dump_conn_end(&c, 0, 0.0, &out);
  (void)!ferry_dump_conn_end(&c, 1, 0.0, &out);
  ferry_dump_conn_close(&c);

  ferry_dump_record r;
  ferry_dump_record_init(&r);
  char err[64];
  (void)!ferry_dump_record_parse((const char *)data + 1, size - 1, &r, err, sizeof err);
  ferry_dump_record_close(&r);
  ferry_buf_close(&out);
  return 0;
}

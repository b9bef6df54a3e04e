/* libFuzzer target for the capture readers of `ferry dump --read`: the
 * input is a whole pcap or pcapng file, read record by record as the cli
 * does, each frame through the link/IP/TCP parser and the reassembly into
 * the dump decoder. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/dump_pcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void frame(ferry_tcp_streams *st, ferry_dump_set *set, ferry_buf *out, uint32_t link,
                  const uint8_t *p, size_t n, double t) {
  ferry_tcp_segment seg;
  if (ferry_pcap_tcp_parse(link, p, n, &seg) == FERRY_OK)
    (void)!ferry_tcp_streams_feed(st, &seg, t, set, out);
  out->len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  static ferry_tcp_streams st;
  ferry_dump_opts o;
  ferry_dump_opts_default(&o);
  ferry_dump_set set;
  ferry_dump_set_init(&set, &o);
  ferry_tcp_streams_init(&st, data[0] & 1 ? 9090 : 0);
  ferry_buf out;
  ferry_buf_init(&out, 1u << 20);
  int kind = ferry_pcap_magic(data);
  if (kind == 1 && size >= 24) {
    ferry_pcap_file pf;
    if (ferry_pcap_global_parse(data, &pf) == FERRY_OK) {
      size_t off = 24;
      while (size - off >= 16) {
        double t;
        uint32_t cap;
        if (ferry_pcap_record_parse(&pf, data + off, &t, &cap) || cap > size - off - 16)
          break;
        frame(&st, &set, &out, pf.linktype, data + off + 16, cap, t);
        off += 16 + cap;
      }
    }
  } else if (kind == 2) {
    ferry_pcapng g;
    memset(&g, 0, sizeof g);
    size_t off = 0;
    while (size - off >= 12) {
      uint32_t type, total;
      if (ferry_pcapng_block_start(&g, data + off, &type, &total) || total > size - off)
        break;
      const uint8_t *fr;
      size_t fl;
      uint32_t link;
      double t;
      int rc = ferry_pcapng_block_parse(&g, data + off, total, &fr, &fl, &link, &t);
      if (rc < 0)
        break;
      if (rc == 1)
        frame(&st, &set, &out, link, fr, fl, t);
      off += total;
    }
  } else {
    /* A bare frame of each link type. */
    static const uint32_t links[] = {0, 1, 101, 108, 113, 276};
    frame(&st, &set, &out, links[data[1] % 6], data + 2, size - 2, 0);
  }
  (void)!ferry_dump_set_finish(&set, 0, &out);
  ferry_dump_set_close(&set);
  ferry_buf_close(&out);
  return 0;
}

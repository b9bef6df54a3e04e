/* `ferry dump --read` of a capture: the file is read one record (pcap) or
 * one block (pcapng) at a time, each bounded by the wire layer's ceilings,
 * so a capture of any size is read in constant memory. */
#include "cli/dump_pcap_file.h"

#include <stdlib.h>
#include <string.h>

#include "wire/dump_pcap.h"
#include "wire/dump_record.h"

int ferry_dump_pcap_is_capture(const uint8_t magic[4]) {
  return ferry_pcap_magic(magic) != 0;
}

typedef struct reader {
  ferry_dump_set set;
  ferry_tcp_streams streams;
  ferry_buf out;
  FILE *to;
  double t0;
  int have_t0;
  unsigned long frames, skipped;
} reader;

static int flush(reader *r) {
  if (r->out.len && fwrite(r->out.data, 1, r->out.len, r->to) != r->out.len)
    return FERRY_EIO;
  r->out.len = 0;
  return 0;
}

/* One captured frame: times are shown from the first frame on. */
static int frame(reader *r, uint32_t linktype, const uint8_t *p, size_t n, double t) {
  if (!r->have_t0) {
    r->t0 = t;
    r->have_t0 = 1;
  }
  r->frames++;
  ferry_tcp_segment seg;
  if (ferry_pcap_tcp_parse(linktype, p, n, &seg) != FERRY_OK) {
    r->skipped++;
    return 0;
  }
  int rc = ferry_tcp_streams_feed(&r->streams, &seg, t - r->t0, &r->set, &r->out);
  return rc ? rc : flush(r);
}

static int read_pcap(reader *r, FILE *f, uint8_t *buf, char *err, size_t errcap) {
  uint8_t hdr[24];
  ferry_pcap_file pf;
  if (fread(hdr, 1, 24, f) != 24 || ferry_pcap_global_parse(hdr, &pf)) {
    snprintf(err, errcap, "not a pcap file (bad global header)");
    return FERRY_EPROTO;
  }
  for (unsigned long i = 1;; i++) {
    uint8_t rh[16];
    size_t got = fread(rh, 1, 16, f);
    if (got == 0)
      return 0;
    double t = 0;
    uint32_t caplen = 0;
    if (got != 16) {
      snprintf(err, errcap, "record %lu: the file ends inside its header", i);
      return FERRY_EPROTO;
    }
    if (ferry_pcap_record_parse(&pf, rh, &t, &caplen)) {
      snprintf(err, errcap, "record %lu: captured length over the %u-byte ceiling", i,
               FERRY_PCAP_MAX_CAPLEN);
      return FERRY_ETOOBIG;
    }
    if (fread(buf, 1, caplen, f) != caplen) {
      snprintf(err, errcap, "record %lu: the file ends inside its %u bytes", i, caplen);
      return FERRY_EPROTO;
    }
    int rc = frame(r, pf.linktype, buf, caplen, t);
    if (rc) {
      snprintf(err, errcap, "record %lu: %s", i, ferry_strerror(rc));
      return rc;
    }
  }
}

static int read_pcapng(reader *r, FILE *f, uint8_t *buf, char *err, size_t errcap) {
  ferry_pcapng g;
  memset(&g, 0, sizeof g);
  for (unsigned long i = 1;; i++) {
    size_t got = fread(buf, 1, 12, f);
    if (got == 0)
      return 0;
    uint32_t type = 0, total = 0;
    if (got != 12 || ferry_pcapng_block_start(&g, buf, &type, &total)) {
      snprintf(err, errcap, "block %lu: bad or truncated block header", i);
      return FERRY_EPROTO;
    }
    if (fread(buf + 12, 1, total - 12, f) != total - 12) {
      snprintf(err, errcap, "block %lu: the file ends inside its %u bytes", i, total);
      return FERRY_EPROTO;
    }
    const uint8_t *fr = NULL;
    size_t flen = 0;
    uint32_t link = 0;
    double t = 0;
    int rc = ferry_pcapng_block_parse(&g, buf, total, &fr, &flen, &link, &t);
    if (rc < 0) {
      snprintf(err, errcap, "block %lu: malformed (type %u)", i, type);
      return rc;
    }
    if (rc == 1 && (rc = frame(r, link, fr, flen, t)) != 0) {
      snprintf(err, errcap, "block %lu: %s", i, ferry_strerror(rc));
      return rc;
    }
  }
}

int ferry_dump_pcap_read_file(FILE *f, const ferry_dump_opts *o, int port, FILE *out,
                              char *err, size_t errcap) {
  reader *r = calloc(1, sizeof *r);
  size_t bufsize = FERRY_PCAPNG_MAX_BLOCK > FERRY_PCAP_MAX_CAPLEN ? FERRY_PCAPNG_MAX_BLOCK
                                                                   : FERRY_PCAP_MAX_CAPLEN;
  uint8_t *buf = malloc(bufsize);
  if (!r || !buf) {
    free(r);
    free(buf);
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  ferry_dump_set_init(&r->set, o);
  ferry_tcp_streams_init(&r->streams, port);
  ferry_buf_init(&r->out, (size_t)64 << 20);
  r->to = out;
  uint8_t magic[4];
  int rc = FERRY_EPROTO;
  if (fread(magic, 1, 4, f) == 4) {
    rewind(f);
    rc = ferry_pcap_magic(magic) == 2 ? read_pcapng(r, f, buf, err, errcap)
                                      : read_pcap(r, f, buf, err, errcap);
  } else {
    snprintf(err, errcap, "not a capture");
  }
  /* Streams the capture ended in the middle of. */
  int frc = ferry_dump_set_finish(&r->set, 0, &r->out);
  if (!rc)
    rc = frc;
  if (flush(r) && !rc) {
    rc = FERRY_EIO;
    snprintf(err, errcap, "cannot write the output");
  }
  ferry_dump_set_close(&r->set);
  ferry_buf_close(&r->out);
  free(buf);
  free(r);
  return rc;
}

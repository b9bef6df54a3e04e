/* pcap/pcapng records, link/IP/TCP headers and TCP reassembly for
 * `ferry dump --read` (see dump_pcap.h). */
#include "wire/dump_pcap.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t rd32(int swapped, const uint8_t *p) {
  return swapped ? be32(p) : get_le32(p);
}

static uint16_t rd16(int swapped, const uint8_t *p) {
  return swapped ? be16(p) : get_le16(p);
}

int ferry_pcap_magic(const uint8_t p[4]) {
  uint32_t m = get_le32(p);
  if (m == 0xa1b2c3d4 || m == 0xd4c3b2a1 || m == 0xa1b23c4d || m == 0x4d3cb2a1)
    return 1;
  if (m == 0x0a0d0d0a)
    return 2;
  return 0;
}

int ferry_pcap_global_parse(const uint8_t p[24], ferry_pcap_file *f) {
  uint32_t m = get_le32(p);
  memset(f, 0, sizeof *f);
  if (m == 0xa1b2c3d4 || m == 0xa1b23c4d) {
    f->swapped = 0;
  } else if (m == 0xd4c3b2a1 || m == 0x4d3cb2a1) {
    f->swapped = 1;
  } else {
    return FERRY_EPROTO;
  }
  f->nsec = m == 0xa1b23c4d || m == 0x4d3cb2a1;
  if (rd16(f->swapped, p + 4) != 2)
    return FERRY_EPROTO;
  /* The upper bits of the link type field carry FCS information. */
  f->linktype = rd32(f->swapped, p + 20) & 0x0fffffff;
  return FERRY_OK;
}

int ferry_pcap_record_parse(const ferry_pcap_file *f, const uint8_t p[16], double *t,
                            uint32_t *caplen) {
  uint32_t sec = rd32(f->swapped, p), frac = rd32(f->swapped, p + 4);
  uint32_t unvalidated_caplen = rd32(f->swapped, p + 8);
  if (unvalidated_caplen > FERRY_PCAP_MAX_CAPLEN)
    return FERRY_ETOOBIG;
  *caplen = unvalidated_caplen;
  *t = (double)sec + (double)frac / (f->nsec ? 1e9 : 1e6);
  return FERRY_OK;
}

int ferry_pcapng_block_start(ferry_pcapng *g, const uint8_t p[12], uint32_t *type,
                             uint32_t *total) {
  uint32_t ty = get_le32(p);
  if (ty == 0x0a0d0d0a) {
    /* The section header says its byte order; its type reads the same in
     * both. */
    uint32_t bom = get_le32(p + 8);
    if (bom == 0x1a2b3c4d)
      g->swapped = 0;
    else if (bom == 0x4d3c2b1a)
      g->swapped = 1;
    else
      return FERRY_EPROTO;
    g->nifaces = 0; /* interfaces are numbered per section */
  }
  *type = rd32(g->swapped, p);
  uint32_t unvalidated_total = rd32(g->swapped, p + 4);
  if (unvalidated_total < 12 || unvalidated_total % 4)
    return FERRY_EPROTO;
  if (unvalidated_total > FERRY_PCAPNG_MAX_BLOCK)
    return FERRY_ETOOBIG;
  *total = unvalidated_total;
  return FERRY_OK;
}

/* The if_tsresol option of an interface description, if any. */
static double iface_tick(const ferry_pcapng *g, const uint8_t *opt, size_t n) {
  double tick = 1e-6;
  size_t off = 0;
  while (off + 4 <= n) {
    uint16_t code = rd16(g->swapped, opt + off), len = rd16(g->swapped, opt + off + 2);
    if (code == 0 || off + 4 + len > n)
      break;
    if (code == 9 && len >= 1) {
      uint8_t v = opt[off + 4];
      unsigned e = v & 0x7f;
      if (e <= 30)
        tick = v & 0x80 ? ldexp(1.0, -(int)e) : pow(10.0, -(double)e);
    }
    off += 4 + (((size_t)len + 3) & ~(size_t)3);
  }
  return tick;
}

int ferry_pcapng_block_parse(ferry_pcapng *g, const uint8_t *b, size_t n,
                             const uint8_t **frame, size_t *frame_len, uint32_t *linktype,
                             double *t) {
  if (n < 12)
    return FERRY_EPROTO;
  uint32_t type = rd32(g->swapped, b);
  const uint8_t *body = b + 8;
  size_t blen = n - 12; /* without type, length and the trailing length */
  switch (type) {
  case 1: /* interface description */
    if (blen < 8)
      return FERRY_EPROTO;
    if (g->nifaces < FERRY_PCAPNG_MAX_IFACES) {
      g->linktype[g->nifaces] = rd16(g->swapped, body);
      g->tick[g->nifaces] = iface_tick(g, body + 8, blen - 8);
      g->nifaces++;
    }
    return 0;
  case 6: { /* enhanced packet */
    if (blen < 20)
      return FERRY_EPROTO;
    uint32_t iface = rd32(g->swapped, body);
    uint64_t ts = (uint64_t)rd32(g->swapped, body + 4) << 32 | rd32(g->swapped, body + 8);
    uint32_t unvalidated_caplen = rd32(g->swapped, body + 12);
    if (iface >= g->nifaces || unvalidated_caplen > blen - 20)
      return FERRY_EPROTO;
    *frame = body + 20;
    *frame_len = unvalidated_caplen;
    *linktype = g->linktype[iface];
    *t = (double)ts * g->tick[iface];
    return 1;
  }
  case 3: { /* simple packet: interface 0, no time */
    if (blen < 4 || g->nifaces < 1)
      return FERRY_EPROTO;
    uint32_t orig = rd32(g->swapped, body);
    *frame = body + 4;
    *frame_len = orig < blen - 4 ? orig : blen - 4;
    *linktype = g->linktype[0];
    *t = 0;
    return 1;
  }
  default:
    return 0;
  }
}

/* ---- frames --------------------------------------------------------------- */

static int parse_ip(const uint8_t *p, size_t n, int version, ferry_tcp_segment *seg) {
  const uint8_t *tcp;
  size_t tlen;
  if (version == 4) {
    if (n < 20 || (p[0] >> 4) != 4)
      return FERRY_EPROTO;
    size_t ihl = (size_t)(p[0] & 15) * 4;
    size_t total = be16(p + 2);
    if (ihl < 20 || total < ihl || total > n)
      return FERRY_EPROTO;
    if (p[9] != 6)
      return FERRY_EUNSUPPORTED;
    if (be16(p + 6) & 0x3fff) /* a fragment: MF set or an offset */
      return FERRY_EUNSUPPORTED;
    seg->family = 4;
    memset(seg->src, 0, sizeof seg->src);
    memset(seg->dst, 0, sizeof seg->dst);
    memcpy(seg->src, p + 12, 4);
    memcpy(seg->dst, p + 16, 4);
    tcp = p + ihl;
    tlen = total - ihl; /* Ethernet padding after the datagram is not data */
  } else {
    if (n < 40 || (p[0] >> 4) != 6)
      return FERRY_EPROTO;
    size_t plen = be16(p + 4);
    if (40 + plen > n)
      return FERRY_EPROTO;
    if (p[6] != 6)
      return FERRY_EUNSUPPORTED;
    seg->family = 6;
    memcpy(seg->src, p + 8, 16);
    memcpy(seg->dst, p + 24, 16);
    tcp = p + 40;
    tlen = plen;
  }
  if (tlen < 20)
    return FERRY_EPROTO;
  size_t doff = (size_t)(tcp[12] >> 4) * 4;
  if (doff < 20 || doff > tlen)
    return FERRY_EPROTO;
  seg->sport = be16(tcp);
  seg->dport = be16(tcp + 2);
  seg->seq = be32(tcp + 4);
  seg->flags = tcp[13];
  seg->payload = tcp + doff;
  seg->len = tlen - doff;
  return FERRY_OK;
}

static int ethertype_ip(uint16_t et) {
  return et == 0x0800 ? 4 : et == 0x86dd ? 6 : 0;
}

int ferry_pcap_tcp_parse(uint32_t linktype, const uint8_t *p, size_t n,
                         ferry_tcp_segment *seg) {
  int v = 0;
  size_t off = 0;
  switch (linktype) {
  case FERRY_LINK_NULL:
  case FERRY_LINK_LOOP: {
    if (n < 4)
      return FERRY_EPROTO;
    /* The address family in the capturing host's byte order (NULL) or
     * network order (LOOP): accept both. */
    uint32_t fam = get_le32(p) == 2 || be32(p) == 2 ? 2 : get_le32(p);
    uint32_t fb = be32(p);
    v = fam == 2 ? 4
        : (fam == 24 || fam == 28 || fam == 30 || fb == 24 || fb == 28 || fb == 30) ? 6
                                                                                    : 0;
    off = 4;
    break;
  }
  case FERRY_LINK_ETHERNET: {
    if (n < 14)
      return FERRY_EPROTO;
    uint16_t et = be16(p + 12);
    off = 14;
    if (et == 0x8100) { /* one VLAN tag */
      if (n < 18)
        return FERRY_EPROTO;
      et = be16(p + 16);
      off = 18;
    }
    v = ethertype_ip(et);
    break;
  }
  case FERRY_LINK_RAW:
  case 12:
  case 14:
    if (n < 1)
      return FERRY_EPROTO;
    v = p[0] >> 4;
    break;
  case FERRY_LINK_SLL:
    if (n < 16)
      return FERRY_EPROTO;
    v = ethertype_ip(be16(p + 14));
    off = 16;
    break;
  case FERRY_LINK_SLL2:
    if (n < 20)
      return FERRY_EPROTO;
    v = ethertype_ip(be16(p));
    off = 20;
    break;
  default:
    return FERRY_EUNSUPPORTED;
  }
  if (v != 4 && v != 6)
    return FERRY_EUNSUPPORTED;
  return parse_ip(p + off, n - off, v, seg);
}

/* ---- reassembly ----------------------------------------------------------- */

void ferry_tcp_streams_init(ferry_tcp_streams *s, int port) {
  memset(s, 0, sizeof *s);
  s->next_id = 1;
  s->port = port;
}

/* The flow of a segment and the direction it travels in (0: from the
 * client), or NULL. */
static ferry_tcp_flow *find(ferry_tcp_streams *s, const ferry_tcp_segment *seg, int *dir) {
  size_t alen = seg->family == 4 ? 4 : 16;
  for (size_t i = 0; i < FERRY_DUMP_MAX_CONNS; i++) {
    ferry_tcp_flow *f = &s->flows[i];
    if (!f->used || f->family != seg->family)
      continue;
    for (int d = 0; d < 2; d++)
      if (f->port[d] == seg->sport && f->port[1 - d] == seg->dport &&
          !memcmp(f->addr[d], seg->src, alen) && !memcmp(f->addr[1 - d], seg->dst, alen)) {
        *dir = d;
        return f;
      }
  }
  return NULL;
}

static int end_dir(ferry_tcp_flow *f, int d, double t, ferry_dump_set *set, ferry_buf *out) {
  if (f->ended[d])
    return 0;
  f->ended[d] = 1;
  int rc = ferry_dump_set_feed(set, f->id, FERRY_DUMP_REC_CLOSE, d, t, NULL, 0, out);
  if (f->ended[0] && f->ended[1])
    f->used = 0;
  return rc;
}

int ferry_tcp_streams_feed(ferry_tcp_streams *s, const ferry_tcp_segment *seg, double t,
                           ferry_dump_set *set, ferry_buf *out) {
  if (s->port && seg->sport != s->port && seg->dport != s->port)
    return 0;
  int dir = 0;
  ferry_tcp_flow *f = find(s, seg, &dir);
  if (!f) {
    if (seg->flags & FERRY_TCP_RST)
      return 0;
    if (!seg->len && !(seg->flags & FERRY_TCP_SYN))
      return 0; /* a bare ACK or FIN of a stream we never saw */
    for (size_t i = 0; i < FERRY_DUMP_MAX_CONNS && !f; i++)
      if (!s->flows[i].used)
        f = &s->flows[i];
    if (!f)
      return FERRY_ETOOBIG;
    memset(f, 0, sizeof *f);
    f->used = 1;
    f->family = seg->family;
    /* Who is the client: the SYN's sender; else the side not on the
     * given port; else the first sender. */
    int from_server = (seg->flags & FERRY_TCP_SYN) ? (seg->flags & FERRY_TCP_ACK) != 0
                                                   : (s->port && seg->sport == s->port);
    int c = from_server ? 1 : 0;
    memcpy(f->addr[c], seg->src, 16);
    memcpy(f->addr[1 - c], seg->dst, 16);
    f->port[c] = seg->sport;
    f->port[1 - c] = seg->dport;
    f->id = s->next_id++;
    dir = c;
    int rc = ferry_dump_set_feed(set, f->id, FERRY_DUMP_REC_OPEN, 0, t, NULL, 0, out);
    if (rc)
      return rc;
  }
  if (seg->flags & FERRY_TCP_RST) {
    int rc = end_dir(f, 0, t, set, out);
    int rc2 = end_dir(f, 1, t, set, out);
    return rc ? rc : rc2;
  }
  if (f->ended[dir])
    return 0;
  uint32_t seq = seg->seq;
  if (seg->flags & FERRY_TCP_SYN) {
    f->next_seq[dir] = seq + 1;
    f->have_seq[dir] = 1;
    seq++;
  }
  const uint8_t *p = seg->payload;
  size_t n = seg->len;
  if (n) {
    if (!f->have_seq[dir]) {
      f->next_seq[dir] = seq;
      f->have_seq[dir] = 1;
    }
    int32_t delta = (int32_t)(seq - f->next_seq[dir]);
    if (delta < 0) {
      /* Retransmitted bytes: pass only what is new. */
      size_t old = (size_t)(-(int64_t)delta);
      if (old >= n) {
        n = 0;
      } else {
        p += old;
        n -= old;
      }
    } else if (delta > 0) {
      /* The capture lost bytes (snap length, drops): say so; what follows
       * is decoded from wherever it lands. */
      char msg[96];
      snprintf(msg, sizeof msg, "%s: %ld bytes missing from the capture",
               dir ? "s2c" : "c2s", (long)delta);
      int rc = ferry_dump_set_event(set, f->id, t, msg, out);
      if (rc)
        return rc;
    }
    if (n) {
      int rc = ferry_dump_set_feed(set, f->id, FERRY_DUMP_REC_DATA, dir, t, p, n, out);
      if (rc)
        return rc;
      f->next_seq[dir] = seq + (uint32_t)(p - seg->payload) + (uint32_t)n;
    }
  }
  if (seg->flags & FERRY_TCP_FIN)
    return end_dir(f, dir, t, set, out);
  return 0;
}

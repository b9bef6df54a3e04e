/* Captures for `ferry dump --read FILE.pcap`: the pcap and pcapng file
 * formats, the link, IP and TCP headers of a captured frame, and TCP
 * stream reassembly into a ferry_dump_set (docs/internals/dump.md).
 *
 * Written here as pure bounded decoders rather than linked from libpcap:
 * the binary links only libc dynamically (DESIGN.md), Debian's libpcap is
 * not meant to be linked statically (it pulls libdbus and others), and the
 * file formats are small.  Every length read from the file is checked
 * against its ceiling before anything is read or allocated for it. */
#ifndef FERRY_WIRE_DUMP_PCAP_H
#define FERRY_WIRE_DUMP_PCAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "wire/dump_record.h"

#define FERRY_PCAP_MAX_CAPLEN (256u << 10) /* bytes of one captured frame */
#define FERRY_PCAPNG_MAX_BLOCK (1u << 20)  /* bytes of one pcapng block */
#define FERRY_PCAPNG_MAX_IFACES 64

/* Link types (LINKTYPE_* of tcpdump.org). */
#define FERRY_LINK_NULL 0
#define FERRY_LINK_ETHERNET 1
#define FERRY_LINK_RAW 101
#define FERRY_LINK_LOOP 108
#define FERRY_LINK_SLL 113
#define FERRY_LINK_SLL2 276

/* ---- classic pcap -------------------------------------------------------- */

typedef struct ferry_pcap_file {
  int swapped;       /* the file's byte order is not little-endian */
  int nsec;          /* timestamps in nanoseconds */
  uint32_t linktype;
} ferry_pcap_file;

/* 1 if the 4 bytes start a pcap (either byte order, µs or ns) file, 2 for
 * pcapng, else 0. */
int ferry_pcap_magic(const uint8_t p[4]);
/* The 24-byte global header.  FERRY_EPROTO for another magic or version. */
int ferry_pcap_global_parse(const uint8_t p[24], ferry_pcap_file *f) FERRY_MUST_CHECK;
/* A 16-byte record header: time in *t, bytes that follow in *caplen.
 * FERRY_ETOOBIG past FERRY_PCAP_MAX_CAPLEN. */
int ferry_pcap_record_parse(const ferry_pcap_file *f, const uint8_t p[16], double *t,
                            uint32_t *caplen) FERRY_MUST_CHECK;

/* ---- pcapng --------------------------------------------------------------- */

typedef struct ferry_pcapng {
  int swapped;
  size_t nifaces;
  uint32_t linktype[FERRY_PCAPNG_MAX_IFACES];
  double tick[FERRY_PCAPNG_MAX_IFACES]; /* seconds per timestamp unit */
} ferry_pcapng;

/* The 8 bytes that start every block: type and total length (>= 12, a
 * multiple of 4, <= FERRY_PCAPNG_MAX_BLOCK).  A section header block also
 * sets the byte order from its byte-order magic, so pass its first 12
 * bytes (p has 12 bytes).  FERRY_EPROTO/FERRY_ETOOBIG otherwise. */
int ferry_pcapng_block_start(ferry_pcapng *g, const uint8_t p[12], uint32_t *type,
                             uint32_t *total) FERRY_MUST_CHECK;
/* One whole block b[0..n) (n == total).  For an enhanced or simple packet
 * block frame, frame_len, linktype and t are set and 1 returned; other
 * blocks (interface descriptions are recorded) return 0.  FERRY_EPROTO for
 * lengths that do not fit the block or an unknown interface. */
int ferry_pcapng_block_parse(ferry_pcapng *g, const uint8_t *b, size_t n,
                             const uint8_t **frame, size_t *frame_len, uint32_t *linktype,
                             double *t) FERRY_MUST_CHECK;

/* ---- frames --------------------------------------------------------------- */

typedef struct ferry_tcp_segment {
  int family; /* 4 or 6 */
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
  uint32_t seq;
  uint8_t flags; /* TCP flags: FIN 1, SYN 2, RST 4, ACK 16 */
  const uint8_t *payload;
  size_t len;
} ferry_tcp_segment;

#define FERRY_TCP_FIN 0x01
#define FERRY_TCP_SYN 0x02
#define FERRY_TCP_RST 0x04
#define FERRY_TCP_ACK 0x10

/* The TCP segment in a captured frame.  FERRY_EUNSUPPORTED for frames that
 * carry no TCP (ARP, UDP, IP fragments, IPv6 extension headers),
 * FERRY_EPROTO for truncated or inconsistent headers. */
int ferry_pcap_tcp_parse(uint32_t linktype, const uint8_t *p, size_t n,
                         ferry_tcp_segment *seg) FERRY_MUST_CHECK;

/* ---- reassembly ----------------------------------------------------------- */

typedef struct ferry_tcp_flow {
  int used;
  int family;
  uint8_t addr[2][16]; /* [0] the client (sent the SYN), [1] the server */
  uint16_t port[2];
  unsigned id;
  int have_seq[2];
  uint32_t next_seq[2];
  int ended[2];
} ferry_tcp_flow;

typedef struct ferry_tcp_streams {
  ferry_tcp_flow flows[FERRY_DUMP_MAX_CONNS];
  unsigned next_id;
  int port; /* only streams with this port at one end; 0: all */
} ferry_tcp_streams;

void ferry_tcp_streams_init(ferry_tcp_streams *s, int port);
/* Adds one segment: payload in sequence order goes to the set as the
 * connection's bytes (retransmitted bytes once; a hole is reported and
 * skipped), FIN/RST end directions.  The side that sent the SYN is the
 * client; for a stream caught mid-way, the side whose port is `port`, or
 * else the first sender, is.  FERRY_ETOOBIG past FERRY_DUMP_MAX_CONNS
 * streams at once. */
int ferry_tcp_streams_feed(ferry_tcp_streams *s, const ferry_tcp_segment *seg, double t,
                           ferry_dump_set *set, ferry_buf *out) FERRY_MUST_CHECK;

#endif

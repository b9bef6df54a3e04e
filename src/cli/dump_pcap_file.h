/* `ferry dump --read` of a pcap or pcapng capture: reads the file record
 * by record (each bounded) and hands the TCP segments to the wire layer's
 * reassembly (wire/dump_pcap.h). */
#ifndef FERRY_CLI_DUMP_PCAP_FILE_H
#define FERRY_CLI_DUMP_PCAP_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "wire/dump.h"

/* 1 if the file's first 4 bytes are a pcap or pcapng magic. */
int ferry_dump_pcap_is_capture(const uint8_t magic[4]);

/* Decodes every TCP stream of the capture (only those with port `port`
 * at either end when port != 0) and prints to out.  Returns 0, or a
 * FERRY_E* code with err filled (a damaged file: what came before is
 * printed). */
int ferry_dump_pcap_read_file(FILE *f, const ferry_dump_opts *o, int port, FILE *out,
                              char *err, size_t errcap);

#endif

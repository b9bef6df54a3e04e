#include "cli/dump_pcap_file.h"

#include <string.h>

int ferry_dump_pcap_is_capture(const uint8_t magic[4]) {
  (void)magic;
  return 0;
}

int ferry_dump_pcap_read_file(FILE *f, const ferry_dump_opts *o, int port, FILE *out,
                              char *err, size_t errcap) {
  (void)f; (void)o; (void)port; (void)out;
  snprintf(err, errcap, "not yet");
  return FERRY_EUNSUPPORTED;
}

/* libFuzzer target: every tracker message decoder on arbitrary bytes (the
 * farm's too), and
 * the info merge plus summary encoder on whatever UPDATE_INFO decodes to. */
#include <stddef.h>
#include <stdint.h>

#include "wire/tracker_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[128] = "";
  ferry_tracker_request req;
  if (ferry_tracker_request_decode(data, size, &req, err, sizeof err) == 0 &&
      req.info) {
    ferry_tracker_info *info = ferry_tracker_info_new();
    if (info && ferry_tracker_info_merge(info, req.info, "127.0.0.1") == 0) {
      ferry_buf b;
      ferry_buf_init(&b, 1 << 20);
      const ferry_tracker_info *servers[] = {info};
      ferry_tracker_queue_stat q = {"k", 1, 2};
      if (ferry_tracker_encode_summary(&b, &q, 1, servers, 1) == 0) {
        ferry_tracker_summary s;
        err[0] = 0;
        if (ferry_tracker_decode_summary(b.data, b.len, &s, err, sizeof err) == 0)
          ferry_tracker_summary_close(&s);
      }
      ferry_buf_close(&b);
    }
    ferry_tracker_info_free(info);
  }
  ferry_tracker_request_close(&req);
  int status;
  err[0] = 0;
  (void)ferry_tracker_decode_status(data, size, &status, err, sizeof err);
  ferry_tracker_grant g;
  err[0] = 0;
  if (ferry_tracker_decode_grant(data, size, &g, err, sizeof err) == 0)
    ferry_tracker_grant_close(&g);
  ferry_tracker_strlist l;
  err[0] = 0;
  if (ferry_tracker_decode_pending(data, size, &l, err, sizeof err) == 0) {
    ferry_buf b;
    ferry_buf_init(&b, 1 << 22);
    (void)!ferry_tracker_encode_pending(&b, (const char *const *)l.items, l.n);
    ferry_buf_close(&b);
    ferry_tracker_strlist_close(&l);
  }
  ferry_tracker_summary s;
  err[0] = 0;
  if (ferry_tracker_decode_summary(data, size, &s, err, sizeof err) == 0)
    ferry_tracker_summary_close(&s);
  /* The farm's (docs/internals/farm.md): FARM_STATUS replies and history
   * lines; reports, deadlines and DRAIN go through the request decoder. */
  ferry_farm_status fs;
  if (ferry_farm_status_decode(data, size, &fs, err, sizeof err) == 0)
    ferry_farm_status_close(&fs);
  ferry_farm_line line;
  (void)ferry_farm_line_decode(data, size, &line);
  return 0;
}

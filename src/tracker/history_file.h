/* --state-dir: the session history in an append-only file
 * (history_file.c says how). */
#ifndef FERRY_TRACKER_HISTORY_FILE_H
#define FERRY_TRACKER_HISTORY_FILE_H

#include <limits.h>
#include <stddef.h>

#include "ferry/error.h"
#include "tracker/farm.h"

#define FERRY_HISTORY_READ_MAX (1u << 20) /* bytes read back at start */
#define FERRY_HISTORY_ROTATE (16u << 20)  /* bytes before rotation */

typedef struct ferry_history_file {
  int fd; /* -1: none */
  size_t size;
  char path[PATH_MAX];
} ferry_history_file;

/* Creates dir (0700) if needed, reads the history back into f, opens the
 * file for appending.  On failure err says why and nothing is open. */
int ferry_history_open(ferry_history_file *h, const char *dir, ferry_farm *f, char *err,
                       size_t errcap) FERRY_MUST_CHECK;
/* Appends one record (errors are logged, never fatal). */
void ferry_history_append(ferry_history_file *h, const ferry_farm_record *r);
void ferry_history_close(ferry_history_file *h);

#endif

/* `ferry query` (alias query_rpc_tracker): a tracker's servers and queues in
 * the layout of TVM's query_rpc_tracker (spec §8.2), with two deliberate
 * differences:
 *  - the server address is left-aligned, as in TVM after v0.20 and in the
 *    TVM how-to's sample output;
 *  - keys served through a proxy ("server:proxy[K0,K1]") are counted under
 *    their own keys, so their queue rows are shown with a real total
 *    instead of being hidden (TVM counted them under "proxy[K0,K1]").
 * `--json` prints the tracker's raw summary instead.
 *
 * Any peer can make the summary large (every peer's UPDATE_INFO is in it),
 * so the reply ceiling is what the tracker can send
 * (FERRY_TRACKER_MAX_REPLY), not the 1 MiB of a request, and the table
 * cuts long keys and addresses instead of growing as wide as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "client/tracker_link.h"
#include "wire/constants.h"

/* Bytes of a key or address shown in a table cell; longer ones are cut
 * and end in "...". */
#define CELL_MAX 64

/* How many bytes of s to show in a cell (at most CELL_MAX, never inside a
 * UTF-8 sequence); *cut is set when s is longer. */
static int cell_len(const char *s, int *cut) {
  size_t n = strlen(s);
  *cut = n > CELL_MAX;
  if (!*cut)
    return (int)n;
  n = CELL_MAX - 3;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  return (int)n;
}

/* Prints s in a cell, left-aligned in width bytes (0: no padding). */
static void print_cell(FILE *out, const char *s, int width) {
  int cut, n = cell_len(s, &cut);
  fprintf(out, "%.*s%s", n, s, cut ? "..." : "");
  for (int shown = n + (cut ? 3 : 0); shown < width; shown++)
    fputc(' ', out);
}

typedef struct count {
  const char *key;
  long long total;
  int proxied;
} count;

/* Stable order by key (code-point order = byte order for UTF-8). */
static const ferry_tracker_summary_server *sort_servers_base;
static int cmp_server_idx(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  int c = strcmp(sort_servers_base[i].key, sort_servers_base[j].key);
  return c ? c : (i < j ? -1 : i > j);
}
static int cmp_queue(const void *a, const void *b) {
  const ferry_tracker_summary_queue *x = a, *y = b;
  return strcmp(x->key, y->key);
}

static count *find_count(count *cs, size_t n, const char *key, size_t klen) {
  for (size_t i = 0; i < n; i++)
    if (strlen(cs[i].key) == klen && strncmp(cs[i].key, key, klen) == 0)
      return &cs[i];
  return NULL;
}

/* Adds one server of device key key[0..klen) to the totals. */
static void add_count(count *cs, size_t nq, const char *key, size_t klen, int proxied) {
  count *c = find_count(cs, nq, key, klen);
  if (c) {
    c->total++;
    c->proxied |= proxied;
  }
}

/* with_devices (--long) adds the devices each ferry server serves. */
static void print_summary(FILE *out, const char *host, int port, ferry_tracker_summary *s,
                          int with_devices) {
  fprintf(out, "Tracker address %s:%d\n\n", host, port);
  fprintf(out, "Server List\n------------------------------\n"
               "server-address           key%s\n------------------------------\n",
          with_devices ? "                 devices" : "");
  size_t *idx = malloc((s->nservers ? s->nservers : 1) * sizeof *idx);
  count *cs = calloc(s->nqueues ? s->nqueues : 1, sizeof *cs);
  if (!idx || !cs) {
    free(idx);
    free(cs);
    return;
  }
  for (size_t i = 0; i < s->nservers; i++)
    idx[i] = i;
  sort_servers_base = s->servers;
  qsort(idx, s->nservers, sizeof *idx, cmp_server_idx);
  for (size_t i = 0; i < s->nservers; i++) {
    const ferry_tracker_summary_server *sv = &s->servers[idx[i]];
    print_cell(out, sv->addr, 21);
    fputs("    ", out);
    if (with_devices) {
      print_cell(out, sv->key, 16);
      fputs("    ", out);
      print_cell(out, sv->devices ? sv->devices : "?", 0);
    } else {
      print_cell(out, sv->key, 0);
    }
    fputc('\n', out);
  }
  fprintf(out, "------------------------------\n\n");
  qsort(s->queues, s->nqueues, sizeof *s->queues, cmp_queue);
  for (size_t i = 0; i < s->nqueues; i++)
    cs[i].key = s->queues[i].key;
  for (size_t i = 0; i < s->nservers; i++) {
    const char *k = s->servers[i].key;
    const char *colon = strchr(k, ':');
    if (!colon)
      continue; /* TVM crashed here; such an entry names no device */
    const char *dev = colon + 1;
    size_t n = strlen(dev);
    if (strncmp(dev, "proxy[", 6) == 0 && n > 7 && dev[n - 1] == ']') {
      /* One entry per key the proxy serves: "proxy[K0,K1,K2]". */
      const char *p = dev + 6, *end = dev + n - 1;
      while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        add_count(cs, s->nqueues, p, (size_t)(stop - p), 1);
        p = stop + 1;
      }
    } else {
      add_count(cs, s->nqueues, dev, n, 0);
    }
  }
  size_t width = 0;
  for (size_t i = 0; i < s->nqueues; i++) {
    int cut;
    size_t n = (size_t)cell_len(s->queues[i].key, &cut) + (cut ? 3 : 0);
    if (n > width)
      width = n;
    /* A proxy lists each key once however many servers it parks under it;
     * every free offer of such a key is one parked server. */
    if (cs[i].proxied && cs[i].total < s->queues[i].free)
      cs[i].total = s->queues[i].free;
  }
  size_t title = (width > 3 ? width : 3) + 23;
  char *sep = malloc(title + 2);
  if (sep) {
    memset(sep, '-', title + 1);
    sep[title + 1] = 0;
    fprintf(out, "Queue Status\n%s\n%-*s   total  free  pending\n%s\n", sep, (int)width, "key",
            sep);
    for (size_t i = 0; i < s->nqueues; i++) {
      const ferry_tracker_summary_queue *q = &s->queues[i];
      if (cs[i].total > 0 || q->pending > 0) {
        print_cell(out, q->key, (int)width);
        fprintf(out, "   %-5lld  %-4lld  %-7lld\n", cs[i].total, q->free, q->pending);
      }
    }
    fprintf(out, "%s\n\n", sep);
  }
  free(sep);
  free(idx);
  free(cs);
}

/* "in use by USER@HOST since 12:03:04 (session 3)" and the like. */
static void describe_device(const ferry_farm_status_device *d, char *out, size_t cap) {
  if (strcmp(d->state, "in use") != 0) {
    snprintf(out, cap, "%s%s%s", d->state, d->health ? ": " : "", d->health ? d->health : "");
    return;
  }
  if (!d->session && !(d->user && d->user[0])) {
    snprintf(out, cap, "in use (unknown holder)");
    return;
  }
  char when[16] = "?";
  time_t t = (time_t)d->since;
  struct tm tm;
  if (d->since > 0 && localtime_r(&t, &tm))
    strftime(when, sizeof when, "%H:%M:%S", &tm);
  const char *user = d->user && d->user[0] ? d->user : "?";
  int with_host = !strchr(user, '@') && d->host && d->host[0];
  char sess[48] = "";
  if (d->session)
    snprintf(sess, sizeof sess, " (session %lld)", d->session);
  else
    snprintf(sess, sizeof sess, " (granted, no session reported)");
  char lease[48] = "";
  if (d->lease_left)
    snprintf(lease, sizeof lease, ", lease ends in %.0fs", d->lease_left);
  snprintf(out, cap, "in use by %s%s%s since %s%s%s", user, with_host ? "@" : "",
           with_host ? d->host : "", when, sess, lease);
}

/* The --long part: every device with its state and holder, then every
 * waiting request with its position and wait. */
static void print_farm(FILE *out, const ferry_farm_status *st) {
  fprintf(out, "Device Status\n------------------------------\n"
               "server-address           key                 state\n"
               "------------------------------\n");
  for (size_t i = 0; i < st->ndevices; i++) {
    const ferry_farm_status_device *d = &st->devices[i];
    char text[512];
    describe_device(d, text, sizeof text);
    print_cell(out, d->addr ? d->addr : "", 21);
    fputs("    ", out);
    print_cell(out, d->key, 16);
    fputs("    ", out);
    fprintf(out, "%s\n", text);
  }
  fprintf(out, "------------------------------\n\n");
  if (!st->nwaiting)
    return;
  fprintf(out, "Waiting Requests\n------------------------------\n"
               "key                 position  waited  user\n"
               "------------------------------\n");
  for (size_t i = 0; i < st->nwaiting; i++) {
    const ferry_farm_status_wait *w = &st->waiting[i];
    print_cell(out, w->key, 16);
    fprintf(out, "    %-8lld  %5.0fs  ", w->position, w->wait);
    print_cell(out, w->user && w->user[0] ? w->user : "?", 0);
    fputc('\n', out);
  }
  fprintf(out, "------------------------------\n\n");
}

/* One FARM_STATUS exchange; only a ferry tracker answers it. */
static int query_farm(ferry_tracker_link *l, int ms, ferry_farm_status *st, char *err,
                      size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, 64);
  int rc = ferry_tracker_encode_code(&b, FERRY_TRACKER_FARM_STATUS);
  if (rc == 0)
    rc = ferry_tracker_link_call(l, b.data, b.len, ms, err, errcap);
  ferry_buf_close(&b);
  if (rc == FERRY_ETIMEDOUT || rc == FERRY_ECLOSED)
    snprintf(err, errcap, "the tracker does not report device states (not a ferry tracker?)");
  if (rc)
    return rc;
  char derr[160] = "";
  rc = ferry_farm_status_decode(l->reply.data, l->reply.len, st, derr, sizeof derr);
  if (rc)
    snprintf(err, errcap, "bad device status: %s", derr);
  return rc;
}

/* One round: the summary (and with --long the device table). */
static int query_once(ferry_tracker_link *l, const char *host, int port, int ms, int json,
                      int lng, char *err, size_t errcap) {
  ferry_tracker_summary s;
  int rc = ferry_tracker_link_summary(l, &s, ms, err, errcap);
  if (rc)
    return rc;
  if (json)
    printf("%.*s\n", (int)l->reply.len, (const char *)l->reply.data);
  else
    print_summary(stdout, host, port, &s, lng);
  ferry_tracker_summary_close(&s);
  if (lng) {
    ferry_farm_status st;
    rc = query_farm(l, ms, &st, err, errcap);
    if (rc)
      return rc;
    if (json)
      printf("%.*s\n", (int)l->reply.len, (const char *)l->reply.data);
    else
      print_farm(stdout, &st);
    ferry_farm_status_close(&st);
  }
  return 0;
}

int ferry_cmd_query(int argc, char **argv) {
  const char *host = NULL;
  long port = 0;
  double timeout = 10;
  int json = 0, lng = 0;
  double watch = 0;
  const ferry_opt opts[] = {
      {"host", FERRY_OPT_STRING, &host, "HOST",
       "tracker address ($TVM_TRACKER_HOST or 127.0.0.1)"},
      {"port", FERRY_OPT_INT, &port, "PORT", "tracker port ($TVM_TRACKER_PORT or 9190)"},
      {"json", FERRY_OPT_FLAG, &json, NULL, "print the raw summary JSON"},
      {"long", FERRY_OPT_FLAG, &lng, NULL,
       "also show each device's state and holder and the waiting requests "
       "(ferry's tracker only)"},
      {"watch", FERRY_OPT_DOUBLE, &watch, "SECONDS",
       "redraw every SECONDS until interrupted (default: print once)"},
      {"timeout", FERRY_OPT_DOUBLE, &timeout, "SECONDS",
       "give up if the tracker does not answer in time (10)"},
  };
  const ferry_cmd_spec spec = {
      "query", "[options]", "Show the servers registered at a tracker and its queues.", opts,
      (int)(sizeof opts / sizeof opts[0])};
  int rc = ferry_opts_parse_no_args(&spec, argc, argv);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (ferry_opts_tracker_addr("query", &host, &port))
    return 2;
  if (watch < 0 || watch > 86400 || (watch > 0 && watch < 0.1)) {
    fprintf(stderr, "ferry query: --watch must be in [0.1, 86400]\n");
    return 2;
  }
  if (!(timeout > 0) || timeout > 86400) {
    fprintf(stderr, "ferry query: --timeout must be in (0, 86400]\n");
    return 2;
  }
  int ms = (int)(timeout * 1000);
  ferry_tracker_link l;
  ferry_tracker_link_init(&l);
  char err[512] = "";
  rc = ferry_tracker_link_connect(&l, host, (int)port, ms, err, sizeof err);
  if (rc) {
    fprintf(stderr, "ferry query: cannot reach the tracker at %s:%ld: %s\n", host, port, err);
    ferry_tracker_link_close(&l);
    return 1;
  }
  ferry_tracker_link_set_max_reply(&l, FERRY_TRACKER_MAX_REPLY);
  for (;;) {
    if (watch > 0)
      fputs("\033[H\033[2J", stdout); /* home, clear: a terminal redraw */
    rc = query_once(&l, host, (int)port, ms, json, lng, err, sizeof err);
    if (rc) {
      fprintf(stderr, "ferry query: %s\n", err);
      ferry_tracker_link_close(&l);
      return 1;
    }
    if (fflush(stdout) != 0 || watch <= 0)
      break;
    struct timespec ts = {(time_t)watch, (long)((watch - (double)(time_t)watch) * 1e9)};
    nanosleep(&ts, NULL);
  }
  ferry_tracker_link_close(&l);
  return fflush(stdout) == 0 ? 0 : 1;
}

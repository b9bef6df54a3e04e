/* ferry's optional additions to the tracker protocol (docs/internals/
 * farm.md): session reports inside UPDATE_INFO, a REQUEST deadline, the
 * DRAIN request and the refusal of an expired REQUEST.  Everything here is
 * optional on the wire: TVM's tracker merges a report into the server's
 * info and reads only the first four elements of a REQUEST, and ferry's
 * tools send the codes of their own only to a ferry tracker. */
#include <stdlib.h>
#include <string.h>

#include "wire/tracker_json.h"
#include "wire/tracker_msg.h"

/* Copies the string entry `name` of o into *out (NULL if absent); 0, or a
 * reason why the entry is unusable. */
static const char *take_string(const json_t *o, const char *name, size_t max,
                               char **out) {
  json_t *v = json_object_get(o, name);
  if (!v)
    return NULL;
  if (!json_is_string(v))
    return "must be a string";
  int rc = 0;
  *out = ferry_tracker_json_strdup(v, max, &rc);
  return rc == FERRY_ETOOBIG ? "is too long" : rc ? "cannot be copied" : NULL;
}

int ferry_tracker_report_decode_json(const json_t *o, ferry_tracker_report *r) {
  memset(r, 0, sizeof *r);
  /* A malformed report is not a malformed message: the tracker refuses
   * the report (FAIL) and keeps the server's connection and offers. */
  const char *why = NULL, *field = "";
  json_t *ev = json_object_get(o, "event"), *n = json_object_get(o, "n"),
         *hf = json_object_get(o, "health_failures");
  if (!json_is_object(o)) {
    why = "must be an object";
  } else if (!json_is_string(ev) || (strcmp(json_string_value(ev), "start") != 0 &&
                                     strcmp(json_string_value(ev), "end") != 0)) {
    field = "event", why = "must be \"start\" or \"end\"";
  } else if (!json_is_integer(n) || json_integer_value(n) < 1) {
    field = "n", why = "must be an integer >= 1";
  } else if (hf && (!json_is_integer(hf) || json_integer_value(hf) < 0 ||
                    json_integer_value(hf) > 1000000)) {
    field = "health_failures", why = "must be an integer in [0, 1000000]";
  } else if ((why = take_string(o, "matchkey", FERRY_TRACKER_MAX_KEY, &r->matchkey)) != NULL) {
    field = "matchkey";
  } else if (!r->matchkey) {
    field = "matchkey", why = "is missing";
  } else if ((why = take_string(o, "outcome", FERRY_TRACKER_MAX_OUTCOME, &r->outcome)) != NULL) {
    field = "outcome";
  } else if ((why = take_string(o, "health", FERRY_TRACKER_MAX_OUTCOME, &r->health)) != NULL) {
    field = "health";
  }
  if (why) {
    free(r->matchkey);
    free(r->outcome);
    free(r->health);
    memset(r, 0, sizeof *r);
    ferry_tracker_json_errf(r->bad, sizeof r->bad, "ferry_session%s%s %s", field[0] ? "." : "",
                            field, why);
    r->event = -1;
    return 0;
  }
  r->event = strcmp(json_string_value(ev), "start") == 0 ? FERRY_SESSION_START
                                                         : FERRY_SESSION_END;
  r->n = (long long)json_integer_value(n);
  r->health_failures = hf ? (int)json_integer_value(hf) : 0;
  return 0;
}

int ferry_tracker_health_decode_json(const json_t *o, ferry_tracker_report *r) {
  memset(r, 0, sizeof *r);
  json_t *f = json_object_get(o, "failures");
  const char *why = NULL;
  if (!json_is_object(o))
    why = "must be an object";
  else if (!json_is_integer(f) || json_integer_value(f) < 0 || json_integer_value(f) > 1000000)
    why = ".failures must be an integer in [0, 1000000]";
  else if ((why = take_string(o, "reason", FERRY_TRACKER_MAX_OUTCOME, &r->health)) != NULL)
    why = ".reason must be a string of at most 256 bytes";
  if (why) {
    free(r->health);
    memset(r, 0, sizeof *r);
    ferry_tracker_json_errf(r->bad, sizeof r->bad, "ferry_health%s%s", why[0] == '.' ? "" : " ",
                            why);
    r->event = -1;
    return 0;
  }
  r->event = FERRY_SESSION_HEALTH;
  r->health_failures = (int)json_integer_value(f);
  return 0;
}

int ferry_tracker_encode_health(ferry_buf *out, int failures, const char *reason) {
  size_t mark = out->len;
  int rc = ferry_buf_printf(out, "[5, {\"ferry_health\": {\"failures\": %d", failures);
  if (rc == 0 && reason) {
    rc = ferry_buf_append(out, ", \"reason\": ", 12);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, reason);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "}}]", 3);
  if (rc)
    out->len = mark;
  return rc;
}

void ferry_tracker_report_close(ferry_tracker_report *r) {
  free(r->matchkey);
  free(r->outcome);
  free(r->health);
  memset(r, 0, sizeof *r);
}

int ferry_tracker_encode_request_deadline(ferry_buf *out, const char *key,
                                          const char *user, int priority,
                                          double deadline_s) {
  size_t mark = out->len;
  int rc = ferry_tracker_encode_request(out, key, user, priority);
  if (rc == 0 && deadline_s > 0) {
    char num[40];
    ferry_tracker_json_real(num, deadline_s);
    out->len--; /* the closing ']' */
    rc = ferry_buf_printf(out, ", {\"deadline\": %s}]", num);
  }
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_report(ferry_buf *out, int event, long long n,
                                const char *matchkey, const char *outcome,
                                int health_failures, const char *health) {
  size_t mark = out->len;
  int rc = ferry_buf_printf(out, "[5, {\"ferry_session\": {\"event\": \"%s\", \"n\": %lld, "
                                 "\"matchkey\": ",
                            event == FERRY_SESSION_START ? "start" : "end", n);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, matchkey);
  if (rc == 0 && outcome) {
    rc = ferry_buf_append(out, ", \"outcome\": ", 13);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, outcome);
  }
  if (rc == 0)
    rc = ferry_buf_printf(out, ", \"health_failures\": %d", health_failures);
  if (rc == 0 && health) {
    rc = ferry_buf_append(out, ", \"health\": ", 12);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, health);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "}}]", 3);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_drain(ferry_buf *out, const char *target,
                               const char *stop_key, int undrain) {
  size_t mark = out->len;
  int rc = ferry_buf_printf(out, "[%d, ", FERRY_TRACKER_FARM_DRAIN);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, target);
  if (rc == 0)
    rc = ferry_buf_append(out, ", ", 2);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, stop_key ? stop_key : "");
  if (rc == 0)
    rc = ferry_buf_printf(out, ", %d]", undrain ? 1 : 0);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_refusal(ferry_buf *out, const char *msg) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[-1, ", 5);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, msg);
  if (rc == 0)
    rc = ferry_buf_append(out, "]", 1);
  if (rc)
    out->len = mark;
  return rc;
}

/* ---- the FARM_STATUS reply, for ferry query --long ---------------------- */

static char *dup_field(const json_t *o, const char *name, int *rc) {
  json_t *v = json_object_get(o, name);
  if (!json_is_string(v))
    return NULL;
  return ferry_tracker_json_strdup(v, FERRY_TRACKER_MAX_KEY, rc);
}

static double num_field(const json_t *o, const char *name) {
  json_t *v = json_object_get(o, name);
  return json_is_number(v) ? json_number_value(v) : 0;
}

void ferry_farm_status_close(ferry_farm_status *st) {
  for (size_t i = 0; i < st->ndevices; i++) {
    ferry_farm_status_device *d = &st->devices[i];
    free(d->key), free(d->addr), free(d->state), free(d->user), free(d->host),
        free(d->health);
  }
  for (size_t i = 0; i < st->nwaiting; i++)
    free(st->waiting[i].key), free(st->waiting[i].user);
  free(st->devices);
  free(st->waiting);
  memset(st, 0, sizeof *st);
}

int ferry_farm_status_decode(const uint8_t *body, size_t len, ferry_farm_status *st,
                             char *err, size_t errcap) {
  memset(st, 0, sizeof *st);
  json_t *o = ferry_tracker_json_parse(body, len, err, errcap);
  if (!o)
    return FERRY_EPROTO;
  json_t *devs = json_object_get(o, "devices"), *wait = json_object_get(o, "waiting");
  int rc = 0;
  if (!json_is_object(o) || !json_is_array(devs) || !json_is_array(wait) ||
      json_array_size(devs) > FERRY_TRACKER_MAX_LIST ||
      json_array_size(wait) > FERRY_TRACKER_MAX_LIST) {
    ferry_tracker_json_errf(err, errcap, "not a farm status ({\"devices\": [...], ...})");
    rc = FERRY_EPROTO;
    goto out;
  }
  st->devices = calloc(json_array_size(devs) + 1, sizeof *st->devices);
  st->waiting = calloc(json_array_size(wait) + 1, sizeof *st->waiting);
  if (!st->devices || !st->waiting) {
    rc = FERRY_ENOMEM;
    goto out;
  }
  size_t i;
  json_t *v;
  json_array_foreach(devs, i, v) {
    ferry_farm_status_device *d = &st->devices[st->ndevices++];
    d->key = dup_field(v, "key", &rc);
    d->addr = dup_field(v, "addr", &rc);
    d->state = dup_field(v, "state", &rc);
    d->user = dup_field(v, "user", &rc);
    d->host = dup_field(v, "host", &rc);
    d->health = dup_field(v, "health", &rc);
    d->since = num_field(v, "since");
    d->session = (long long)num_field(v, "session");
    d->lease_left = num_field(v, "lease_left");
    if (!d->key || !d->state) {
      ferry_tracker_json_errf(err, errcap, "a device needs a key and a state");
      rc = rc ? rc : FERRY_EPROTO;
    }
  }
  json_array_foreach(wait, i, v) {
    ferry_farm_status_wait *w = &st->waiting[st->nwaiting++];
    w->key = dup_field(v, "key", &rc);
    w->user = dup_field(v, "user", &rc);
    w->position = (long long)num_field(v, "position");
    w->wait = num_field(v, "wait");
    if (!w->key) {
      ferry_tracker_json_errf(err, errcap, "a waiting request needs a key");
      rc = rc ? rc : FERRY_EPROTO;
    }
  }
out:
  json_decref(o);
  if (rc)
    ferry_farm_status_close(st);
  return rc;
}

/* ---- one line of the --state-dir history -------------------------------- */

int ferry_farm_line_decode(const uint8_t *body, size_t len, ferry_farm_line *out) {
  memset(out, 0, sizeof *out);
  json_t *o = ferry_tracker_json_parse(body, len, NULL, 0);
  if (!o)
    return FERRY_EPROTO;
  int rc = 0;
  static const char *names[4] = {"key", "user", "host", "outcome"};
  char *dst[4] = {out->key, out->user, out->host, out->outcome};
  size_t caps[4] = {sizeof out->key, sizeof out->user, sizeof out->host, sizeof out->outcome};
  json_t *n = json_object_get(o, "session"), *st = json_object_get(o, "start"),
         *en = json_object_get(o, "end");
  if (!json_is_object(o) || !json_is_integer(n) || !json_is_number(st) || !json_is_number(en))
    rc = FERRY_EPROTO;
  for (int i = 0; rc == 0 && i < 4; i++) {
    json_t *v = json_object_get(o, names[i]);
    if (!json_is_string(v) || strlen(json_string_value(v)) >= caps[i])
      rc = FERRY_EPROTO;
    else
      memcpy(dst[i], json_string_value(v), strlen(json_string_value(v)) + 1);
  }
  if (rc == 0) {
    out->session = (long long)json_integer_value(n);
    out->start = json_number_value(st);
    out->end = json_number_value(en);
  }
  json_decref(o);
  return rc;
}

/* The farm: what the tracker knows about each device beyond TVM's queues
 * (docs/internals/farm.md).  Pure logic, no I/O, no clock: every call
 * that needs the time takes it (wall-clock milliseconds).
 *
 * A device is one (owner, key) pair: the connection of a server (or a
 * proxy) and a key it offers under.  Its state is derived, never stored:
 *   offline   its server reported failed self-tests (health_failures > 0)
 *   drained   an operator drained it: its offers are held
 *   free      it has a free offer
 *   in use    it was granted and not offered again since (also between
 *             the end of a session and the next PUT: never missing)
 *   starting  registered (UPDATE_INFO) but not offered yet
 * The holder of a device in use is the user of the REQUEST that was
 * granted it and the requester's address; a server that reports sessions
 * (ferry's) adds the session number and its start; one that does not
 * (TVM's) shows "in use (unknown holder)"... once no report came.
 *
 * Sessions that ended are kept in a ring of the last FERRY_FARM_HISTORY
 * records. */
#ifndef FERRY_TRACKER_FARM_H
#define FERRY_TRACKER_FARM_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

#define FERRY_FARM_MAX_DEVICES 16384   /* devices in all */
#define FERRY_FARM_MAX_USER 64         /* bytes of a holder's user name */
#define FERRY_FARM_HISTORY 256         /* ended sessions kept */
#define FERRY_FARM_MAX_LEASES 64       /* per-key entries of --max-session */

typedef enum ferry_farm_state {
  FERRY_FARM_STARTING,
  FERRY_FARM_FREE,
  FERRY_FARM_IN_USE,
  FERRY_FARM_OFFLINE,
  FERRY_FARM_DRAINED,
} ferry_farm_state;

const char *ferry_farm_state_name(ferry_farm_state st);

typedef struct ferry_farm_device {
  struct ferry_farm_device *prev, *next;
  const void *owner; /* opaque: the tracker's connection */
  char *key;
  char *matchkey;    /* the last match key granted, NULL if none */
  char user[FERRY_FARM_MAX_USER + 1]; /* holder ("" unknown) */
  char host[48];     /* holder's address */
  char addr[96];     /* where clients reach it ("ip:port"), set by PUT */
  int granted;       /* granted and not offered since */
  int64_t since_ms;  /* grant, then session start */
  long long session; /* reported session number; 0: none reported */
  int in_session;    /* between a start and an end report */
  int64_t lease_end_ms; /* 0: no lease */
  int drained;
  int health_failures;
  char health[128];  /* the last self-test failure */
  uint64_t sessions; /* sessions reported on it */
} ferry_farm_device;

typedef struct ferry_farm_record {
  char key[128]; /* cut if longer */
  char user[FERRY_FARM_MAX_USER + 1];
  char host[48];
  long long session;
  int64_t start_ms, end_ms;
  char outcome[96];
} ferry_farm_record;

typedef struct ferry_farm_lease {
  char key[128]; /* "" = every key without an entry of its own */
  double seconds;
} ferry_farm_lease;

typedef struct ferry_farm {
  ferry_farm_device *head, *tail;
  size_t ndevices;
  ferry_farm_record history[FERRY_FARM_HISTORY];
  size_t nhistory, history_next; /* ring: next slot to write */
  ferry_farm_lease leases[FERRY_FARM_MAX_LEASES];
  size_t nleases;
  uint64_t sessions_started, sessions_ended, reports_refused;
} ferry_farm;

void ferry_farm_init(ferry_farm *f);
void ferry_farm_close(ferry_farm *f);

/* Parses --max-session: "SECONDS" or "KEY=SECONDS[,KEY=SECONDS...]" with
 * an optional "*=SECONDS" for the other keys.  On error f's leases are
 * unchanged and err says why. */
int ferry_farm_parse_leases(ferry_farm *f, const char *spec, char *err,
                            size_t errcap) FERRY_MUST_CHECK;
/* The lease for key in seconds, 0 for none. */
double ferry_farm_lease_for(const ferry_farm *f, const char *key);

/* The device (owner, key), created (starting) if new; NULL when out of
 * memory or past FERRY_FARM_MAX_DEVICES.  O(devices). */
ferry_farm_device *ferry_farm_device_get(ferry_farm *f, const void *owner,
                                         const char *key);
ferry_farm_device *ferry_farm_device_find(ferry_farm *f, const void *owner,
                                          const char *key);
/* Forgets every device of owner (its connection closed). */
void ferry_farm_forget(ferry_farm *f, const void *owner);

/* A PUT: the device is free again (holder, session and lease cleared). */
void ferry_farm_offered(ferry_farm_device *d);
/* A grant to user (sanitised by the caller) at host. */
int ferry_farm_granted(ferry_farm_device *d, const char *matchkey, const char *user,
                       const char *host, int64_t now_ms) FERRY_MUST_CHECK;

/* A session report from owner.  start: the device whose last granted match
 * key is matchkey gets session n, since now_ms and the lease of its key
 * (*lease_s, 0 for none).  end: the session is recorded in the history.
 * FERRY_EINVAL (with err) for a match key not granted to this owner or an
 * end without a start: the report changes nothing. */
int ferry_farm_report(ferry_farm *f, const void *owner, int event, long long n,
                      const char *matchkey, const char *outcome, int64_t now_ms,
                      double *lease_s, char *err, size_t errcap) FERRY_MUST_CHECK;

/* The state of d, given how many free offers it has in the scheduler. */
ferry_farm_state ferry_farm_state_of(const ferry_farm_device *d, size_t nfree);

/* Adds an ended session read back from the history file. */
void ferry_farm_history_add(ferry_farm *f, const ferry_farm_record *r);
/* Ended sessions, oldest first: the i-th of nhistory. */
const ferry_farm_record *ferry_farm_history_at(const ferry_farm *f, size_t i);

/* Copies user into out (FERRY_FARM_MAX_USER + 1 bytes) if it is printable
 * ASCII without quotes or backslashes and at most FERRY_FARM_MAX_USER
 * bytes; returns 0, or FERRY_EINVAL and out = "?" (a REQUEST's user is
 * the client's claim: it is shown, never trusted, and never lets control
 * characters into logs or the dashboard). */
int ferry_farm_user_clean(const char *user, char *out);

#endif

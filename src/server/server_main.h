/* The device server's process lifecycle (tracker-proxy-server.md §5, with
 * the defects of §10.3 items 9-18 fixed).
 *
 * One parent process, single-threaded, around one poll() loop: it listens
 * (or dials a proxy), reads handshakes with a deadline, keeps the tracker
 * registration alive and rotates match keys, and runs every session in a
 * forked child with its own work folder.  The parent never executes
 * client-supplied code, so a crashing kernel or a timeout ends one session
 * and the server goes on serving. */
#ifndef FERRY_SERVER_SERVER_MAIN_H
#define FERRY_SERVER_SERVER_MAIN_H

#include <stddef.h>

#include "base/allow.h"
#include "ferry/error.h"

/* Longest device key accepted (match keys add a ~22-byte suffix). */
#define FERRY_SERVER_MAX_DEVICE_KEY 256

/* The largest default work quota (1 GiB): models and their parameters fit,
 * a runaway client does not fill the board's storage. */
#define FERRY_SERVER_DEFAULT_QUOTA ((int64_t)1 << 30)

typedef struct ferry_server_config {
  const char *host;         /* bind address, or the proxy's with through_proxy */
  int port;                 /* first port tried; 0 = any free port */
  int port_end;             /* exclusive end of the port range */
  const char *tracker_host; /* NULL: no tracker */
  int tracker_port;
  const char *key;          /* device key ("" allowed without a tracker) */
  const char *custom_addr;  /* advertised address; NULL: the tracker's view */
  int through_proxy;        /* dial host:port as a proxy instead of listening */
  const char *load_library; /* ':'-separated list, or NULL */
  const char *work_dir;     /* base folder of session folders; NULL: fresh one under $TMPDIR */
  int no_fork;              /* run sessions in-process (debugging: no timeout, no isolation) */
  int handshake_ms;         /* deadline of a client handshake; <= 0: 10 s */
  double max_session_s;     /* server-side cap on every session; 0: none */
  /* --allow: peers that may connect in listening mode; NULL or an empty
   * list: everybody.  Not used with through_proxy (we dial out). */
  const ferry_allow *allow;
  /* --work-quota: bytes one session's folder may hold through uploads.
   * < 0: the default, FERRY_SERVER_DEFAULT_QUOTA or half the free space
   * of the work folder's file system at the session's start, whichever
   * is smaller; 0: no quota. */
  int64_t work_quota;
  /* --max-memory: bytes of device memory one session may hold (client
   * buffers, NDArrays, a Relax VM's pool); 0: half of the RAM. */
  uint64_t max_memory;
  int testing;              /* --testing: offer TVM's rpc.test.* functions */
  const char *allow_hop;    /* --allow-hop list; NULL: multi-hop sessions refused */
  int allow_popen;          /* --allow-popen: rpc.PopenSession sessions (session_popen.c) */
  const char *health_check; /* --health-check command; NULL: the built-in self-test */
  int health_failures;      /* self-test failures in a row before offline; <= 0: 3 */
} ferry_server_config;

/* Checks an --allow-hop list: comma-separated HOST:PORT or HOST:* entries
 * ([v6]:PORT for IPv6 literals).  FERRY_EINVAL with a message in why. */
int ferry_server_allow_hop_check(const char *list, char *why,
                                 size_t whycap) FERRY_MUST_CHECK;

/* Runs the server until SIGTERM or SIGINT arrives, then kills a running
 * session, removes the folders it made and returns 0.  Returns an error
 * (message in err) only for problems at start-up: no port to bind, a work
 * folder that cannot be made, a --load-library file that does not exist.
 * Nothing a client, a session or a tracker does makes it return. */
int ferry_server_run(const ferry_server_config *cfg, char *err,
                     size_t errcap) FERRY_MUST_CHECK;

/* The devices a session of this server would have ("cpu, opencl:0
 * (<name>)"), found in a short-lived child so that this process never
 * loads an OpenCL driver (server_devices.c). */
void ferry_server_probe_devices(char *out, size_t cap);

#endif

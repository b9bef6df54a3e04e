/* Magic words and codes shared by TVM's tracker, proxy, server and client
 * (tracker-proxy-server.md §1.2).  All travel as i32 little-endian. */
#ifndef FERRY_WIRE_CONSTANTS_H
#define FERRY_WIRE_CONSTANTS_H

#define FERRY_RPC_MAGIC 0xFF271          /* first word of a session link */
#define FERRY_RPC_TRACKER_MAGIC 0x2F271  /* first word of a tracker link */
#define FERRY_RPC_CODE_SUCCESS 0xFF271   /* handshake accepted */
#define FERRY_RPC_CODE_DUPLICATE 0xFF272 /* proxy: same key already waiting */
#define FERRY_RPC_CODE_MISMATCH 0xFF273  /* no peer with that key */

/* Tracker request codes (JSON integers). */
#define FERRY_TRACKER_CODE_MAP(XX)                                            \
  XX(FAIL, -1)                                                                \
  XX(SUCCESS, 0)                                                              \
  XX(PING, 1)                                                                 \
  XX(STOP, 2)                                                                 \
  XX(PUT, 3)                                                                  \
  XX(REQUEST, 4)                                                              \
  XX(UPDATE_INFO, 5)                                                          \
  XX(SUMMARY, 6)                                                              \
  XX(GET_PENDING_MATCHKEYS, 7)

enum ferry_tracker_code {
#define FERRY_TRACKER_CODE_ENUM_(name, v) FERRY_TRACKER_##name = (v),
  FERRY_TRACKER_CODE_MAP(FERRY_TRACKER_CODE_ENUM_)
#undef FERRY_TRACKER_CODE_ENUM_
};

/* ferry's own tracker codes, outside TVM's range: only ferry's tools send
 * them, and only to a tracker they know to be ferry's (TVM's tracker logs
 * an unknown code and never answers).  FARM_STATUS [100] asks for the
 * device table (farm.md); DRAIN [101, "KEY or ADDR", stop_key] stops
 * offering a device. */
#define FERRY_TRACKER_FARM_STATUS 100
#define FERRY_TRACKER_FARM_DRAIN 101

/* Ceilings (tracker-proxy-server.md §10.4 recommendations). */
#define FERRY_TRACKER_MAX_FRAME (1u << 20) /* post-0.20 MAX_TRACKER_MSG_BYTES */
/* The largest reply ferry's tracker sends: a SUMMARY holds every peer's
 * info (at most 64 MiB in all, FERRY_TRACKER_MAX_INFO_TOTAL) plus the queue
 * stats.  Requests stay within FERRY_TRACKER_MAX_FRAME; a reader that
 * wants whole summaries (ferry query) accepts replies up to this. */
#define FERRY_TRACKER_MAX_REPLY (96u << 20)
#define FERRY_HANDSHAKE_MAX_KEY 4096       /* bytes of a handshake key */
#define FERRY_HANDSHAKE_DEADLINE_MS 10000  /* whole handshake */

#endif

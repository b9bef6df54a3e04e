/* The HTTP side of WebSocket: request head parsing, origin check, the
 * accept key (nettle's SHA-1 + base64, RFC 6455 §4.2.2) and responses. */
#include "wire/websocket.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nettle/sha1.h>

/* ---- SHA-1, only for the accept key ------------------------------------ */

/* nettle's (statically linked): a well-kept implementation instead of a
 * copy of our own. */
void ferry_sha1(const void *data, size_t n, uint8_t out[20]) {
  struct sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, n, data);
  sha1_digest(&ctx, SHA1_DIGEST_SIZE, out);
}

void ferry_ws_accept_key(const char *client_key, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char buf[FERRY_HTTP_MAX_HEAD + sizeof guid];
  size_t kl = strnlen(client_key, FERRY_HTTP_MAX_HEAD);
  memcpy(buf, client_key, kl);
  memcpy(buf + kl, guid, sizeof guid - 1);
  uint8_t d[21];
  ferry_sha1(buf, kl + sizeof guid - 1, d);
  d[20] = 0;
  size_t o = 0;
  for (size_t i = 0; i < 21; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 |
                 (i + 2 < 21 ? d[i + 2] : 0);
    out[o++] = b64[(v >> 18) & 63];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = b64[(v >> 6) & 63];
    out[o++] = b64[v & 63];
  }
  /* 20 bytes encode to 27 characters plus one '=' of padding. */
  out[27] = '=';
  out[28] = 0;
}

/* ---- request head ------------------------------------------------------ */

void ferry_http_request_init(ferry_http_request *r) {
  memset(r, 0, sizeof *r);
  ferry_buf_init(&r->head, FERRY_HTTP_MAX_HEAD);
  r->method = r->path = r->host = r->origin = r->upgrade = r->connection =
      r->ws_key = r->ws_version = "";
}

void ferry_http_request_close(ferry_http_request *r) {
  ferry_buf_close(&r->head);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = 0;
  return s;
}

/* Splits the NUL-terminated head in place into request line and headers. */
static int parse_head(ferry_http_request *r) {
  char *s = (char *)r->head.data;
  char *line_end = strstr(s, "\r\n");
  if (!line_end)
    return FERRY_EPROTO;
  *line_end = 0;
  char *sp1 = strchr(s, ' ');
  if (!sp1)
    return FERRY_EPROTO;
  *sp1 = 0;
  char *target = sp1 + 1;
  char *sp2 = strchr(target, ' ');
  if (!sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
    return FERRY_EPROTO;
  *sp2 = 0;
  char *q = strchr(target, '?');
  if (q)
    *q = 0;
  if (*s == 0 || *target != '/')
    return FERRY_EPROTO;
  r->method = s;
  r->path = target;
  const char *sec_origin = "";
  for (char *h = line_end + 2; *h;) {
    char *e = strstr(h, "\r\n");
    if (!e)
      return FERRY_EPROTO;
    *e = 0;
    if (*h == 0)
      break;
    char *colon = strchr(h, ':');
    if (!colon || colon == h)
      return FERRY_EPROTO;
    *colon = 0;
    char *v = trim(colon + 1);
    if (strcasecmp(h, "Host") == 0)
      r->host = v;
    else if (strcasecmp(h, "Origin") == 0)
      r->origin = v;
    else if (strcasecmp(h, "Sec-WebSocket-Origin") == 0)
      sec_origin = v;
    else if (strcasecmp(h, "Upgrade") == 0)
      r->upgrade = v;
    else if (strcasecmp(h, "Connection") == 0)
      r->connection = v;
    else if (strcasecmp(h, "Sec-WebSocket-Key") == 0)
      r->ws_key = v;
    else if (strcasecmp(h, "Sec-WebSocket-Version") == 0)
      r->ws_version = v;
    h = e + 2;
  }
  if (!*r->origin)
    r->origin = sec_origin;
  return 0;
}

int ferry_http_request_feed(ferry_http_request *r, const uint8_t *p, size_t n,
                            size_t *used) {
  *used = 0;
  if (r->done)
    return 1;
  /* Take bytes one at a time up to the blank line so that bytes after the
   * head (a client's first frames) stay with the caller. */
  size_t i = 0;
  while (i < n) {
    int rc = ferry_buf_append(&r->head, p + i, 1);
    if (rc) {
      *used = i;
      return rc;
    }
    i++;
    size_t L = r->head.len;
    if (L >= 4 && memcmp(r->head.data + L - 4, "\r\n\r\n", 4) == 0) {
      *used = i;
      if (memchr(r->head.data, 0, L))
        return FERRY_EPROTO;
      r->done = 1;
      return parse_head(r) ? FERRY_EPROTO : 1;
    }
  }
  *used = i;
  return FERRY_EAGAIN;
}

static int has_token(const char *list, const char *tok) {
  size_t tl = strlen(tok);
  const char *s = list;
  while (*s) {
    while (*s == ' ' || *s == ',' || *s == '\t')
      s++;
    const char *e = s;
    while (*e && *e != ',')
      e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
      t--;
    if ((size_t)(t - s) == tl && strncasecmp(s, tok, tl) == 0)
      return 1;
    s = e;
  }
  return 0;
}

int ferry_http_is_ws_upgrade(const ferry_http_request *r) {
  return strcmp(r->method, "GET") == 0 &&
         strcasecmp(r->upgrade, "websocket") == 0 &&
         has_token(r->connection, "upgrade") && *r->ws_key &&
         strcmp(r->ws_version, "13") == 0;
}

int ferry_http_origin_allowed(const ferry_http_request *r) {
  if (!*r->origin)
    return 1;
  /* netloc of the Origin URL: after "scheme://", up to the next '/'. */
  const char *o = strstr(r->origin, "://");
  o = o ? o + 3 : r->origin;
  size_t ol = strcspn(o, "/");
  return strlen(r->host) == ol && strncasecmp(o, r->host, ol) == 0;
}

int ferry_ws_upgrade_response(ferry_buf *out, const char *client_key) {
  char accept[29];
  ferry_ws_accept_key(client_key, accept);
  return ferry_buf_printf(out,
                          "HTTP/1.1 101 Switching Protocols\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n",
                          accept);
}

int ferry_http_response(ferry_buf *out, int status, const char *reason,
                        const char *content_type, const void *body,
                        size_t body_len) {
  int rc = ferry_buf_printf(out,
                            "HTTP/1.1 %d %s\r\n"
                            "Content-Type: %s\r\n"
                            "Content-Length: %zu\r\n"
                            "Connection: close\r\n\r\n",
                            status, reason, content_type, body_len);
  if (rc == 0 && body && body_len)
    rc = ferry_buf_append(out, body, body_len);
  return rc;
}

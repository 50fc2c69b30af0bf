/*
 * The capture agent's forwarder (tcpcopy agent, doc/protocol.md "Agent stream"): ring blocks
 * go from the TPACKET_V3 ring straight to the replayers' TCP sockets, with no JavaScript on the
 * way. One destination: each retired block's packet chain is sent as it lies in the ring (one
 * sendmsg of a 16-byte frame header plus the block's bytes, no per-packet work). Several: each
 * packet's client address and port (its source: the agent captures client->server packets) is
 * hashed to a destination and the packet's ring entry copied to that destination's frame, so
 * each replayer owns whole connections.
 *
 * Never blocks: sends are MSG_DONTWAIT. A frame the socket cannot take at once (EAGAIN, or a
 * destination that is down) is dropped whole and counted (frames, packets, packets with TCP
 * payload). A frame the socket took in part keeps its rest in a pending buffer (at most one
 * frame per destination), written before anything else; while it is pending, new frames for
 * that destination are dropped. JS owns the connections (connect, handshake, reconnect) and
 * hands each one's fd in with fwdSetFd; the forwarder writes to its own dup of it.
 *
 * The blocks come from the ring's forwarding thread (ring.c), not from the event loop; the
 * same thread writes each destination's STATUS frame (the agent's clock, the drops since the
 * previous one) when it is due, so a busy agent sends them with the blocks, without a wake-up
 * of their own. Every entry point takes the forwarder's mutex.
 */
#include "tcn.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_DEST 32
#define FRAME_HDR 16
#define TYPE_PACKETS 1
#define TYPE_STATUS 2
#define STATUS_BODY 64
#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101
#define ALIGN16(x) (((x) + 15u) & ~15u)
/* Pending room beyond one frame: STATUS frames queued behind a partial frame. */
#define PEND_SLACK 65536

enum {
  ST_FRAMES,        /* frames handed to the socket (whole or in part) */
  ST_BYTES,         /* bytes handed to the socket */
  ST_PACKETS,       /* packets in those frames */
  ST_DROP_FRAMES,   /* frames dropped (socket full, destination down) */
  ST_DROP_PACKETS,  /* packets in them */
  ST_DROP_DATA,     /* of those, TCP segments with payload */
  ST_PARTIAL,       /* frames the socket took only in part */
  ST_ERRORS,        /* send errors other than EAGAIN (the destination is then down) */
  ST_LAST_ERRNO,    /* errno of the last such error */
  ST_UP,            /* 1 while the destination has a socket */
  ST_COUNT
};

typedef struct {
  int fd;
  uint8_t *pend;
  size_t pend_off, pend_len, pend_cap;
  uint8_t *stage;
  size_t stage_len;
  uint32_t stage_count, stage_last;
  uint32_t seq;
  double st[ST_COUNT];
  /* drops already reported in STATUS frames: frames, packets, with payload, kernel */
  double rep[4];
} dest_t;

typedef struct {
  pthread_mutex_t mu;
  unsigned n;
  int link;
  size_t block_size;
  /* STATUS frames: every status_ms (0 = only when asked, fwdStatus), the next due, their seq */
  double status_ms, next_status;
  uint32_t status_seq;
  dest_t d[MAX_DEST];
} fwd_t;

static void put_be16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint32_t rd16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

static void put_be64d(uint8_t *p, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  for (int i = 7; i >= 0; i--, u >>= 8) p[i] = (uint8_t)u;
}

static uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The murmur3 finalizer, as mix32 in src/core/client-map.ts. */
static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

/*
 * Looks at one captured frame: sets *hash to the shard hash of its source address and port
 * (mix32(ip ^ port * 0x9e3779b1), IPv6 addresses folded by xor of their four words) and
 * returns 1 when it is a TCP segment with payload, 0 otherwise (*hash 0 when not TCP).
 */
static int frame_info(const uint8_t *p, uint32_t cap, int link, uint32_t *hash) {
  *hash = 0;
  uint32_t off = 0;
  if (link == LINKTYPE_ETHERNET) {
    if (cap < 14) return 0;
    uint32_t type = be16(p + 12);
    off = 14;
    while ((type == 0x8100 || type == 0x88a8) && cap >= off + 4) {
      type = be16(p + off + 2);
      off += 4;
    }
    if (type != 0x0800 && type != 0x86dd) return 0;
  } else if (link != LINKTYPE_RAW) {
    return 0;
  }
  if (cap < off + 20) return 0;
  const uint8_t *ip = p + off;
  uint32_t src, sport, tcp_len, doff;
  int64_t payload;
  if ((ip[0] >> 4) == 4) {
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    if (ip[9] != 6 || ihl < 20 || cap < off + ihl + 14) return 0;
    src = be32(ip + 12);
    sport = be16(ip + ihl);
    doff = (uint32_t)(ip[ihl + 12] >> 4) * 4;
    tcp_len = be16(ip + 2);
    payload = (int64_t)tcp_len - ihl - doff;
  } else if ((ip[0] >> 4) == 6) {
    if (ip[6] != 6 || cap < off + 40 + 14) return 0;
    src = be32(ip + 8) ^ be32(ip + 12) ^ be32(ip + 16) ^ be32(ip + 20);
    sport = be16(ip + 40);
    doff = (uint32_t)(ip[52] >> 4) * 4;
    payload = (int64_t)be16(ip + 4) - doff;
  } else {
    return 0;
  }
  *hash = mix32(src ^ (sport * 0x9e3779b1u));
  return payload > 0;
}

static void dest_down(dest_t *d, int err) {
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  d->pend_off = d->pend_len = 0;
  d->st[ST_UP] = 0;
  if (err != 0) {
    d->st[ST_ERRORS] += 1;
    d->st[ST_LAST_ERRNO] = err;
  }
}

/* Writes what is pending; returns 1 when nothing is left. */
static int flush_pending(dest_t *d) {
  while (d->fd >= 0 && d->pend_off < d->pend_len) {
    ssize_t n = send(d->fd, d->pend + d->pend_off, d->pend_len - d->pend_off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) dest_down(d, errno);
      return 0;
    }
    d->pend_off += (size_t)n;
    d->st[ST_BYTES] += (double)n;
  }
  if (d->pend_off >= d->pend_len) d->pend_off = d->pend_len = 0;
  return d->pend_len == 0;
}

/* Appends bytes to the pending buffer; 0 when they do not fit. */
static int pend_append(dest_t *d, const uint8_t *p, size_t n) {
  if (d->pend_len + n > d->pend_cap) {
    if (d->pend_off > 0) {
      memmove(d->pend, d->pend + d->pend_off, d->pend_len - d->pend_off);
      d->pend_len -= d->pend_off;
      d->pend_off = 0;
    }
    if (d->pend_len + n > d->pend_cap) return 0;
  }
  memcpy(d->pend + d->pend_len, p, n);
  d->pend_len += n;
  return 1;
}

/* Counts the packets with payload of a chain (only for dropped frames). */
static uint32_t chain_data(const uint8_t *first, const uint8_t *end, uint32_t count, int link) {
  uint32_t data = 0, h;
  const uint8_t *p = first;
  for (uint32_t i = 0; i < count && p + 32 <= end; i++) {
    uint32_t snap = rd32(p + 12), mac = rd16(p + 24), next = rd32(p);
    if (p + mac + snap <= end) data += (uint32_t)frame_info(p + mac, snap, link, &h);
    if (next == 0) break;
    p += next;
  }
  return data;
}

/* Counts a frame as dropped: frames, packets and its packets with payload. */
static void drop_frame(fwd_t *f, dest_t *d, const uint8_t *body, size_t blen, uint32_t count) {
  d->st[ST_DROP_FRAMES] += 1;
  d->st[ST_DROP_PACKETS] += count;
  d->st[ST_DROP_DATA] += chain_data(body, body + blen, count, f->link);
}

/* Sends one PACKETS frame (header + body) or drops it whole; never blocks. */
static void dest_frame(fwd_t *f, dest_t *d, const uint8_t *body, size_t blen, uint32_t count) {
  if (d->fd < 0 || !flush_pending(d)) {
    drop_frame(f, d, body, blen, count);
    return;
  }
  uint8_t hdr[FRAME_HDR];
  hdr[0] = TYPE_PACKETS;
  hdr[1] = 0;
  put_be16(hdr + 2, (uint32_t)f->link);
  put_be32(hdr + 4, (uint32_t)blen);
  put_be32(hdr + 8, count);
  put_be32(hdr + 12, d->seq);
  struct iovec iov[2] = {{.iov_base = hdr, .iov_len = FRAME_HDR}, {.iov_base = (void *)body, .iov_len = blen}};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do n = sendmsg(d->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) dest_down(d, errno);
    drop_frame(f, d, body, blen, count);
    return;
  }
  size_t total = FRAME_HDR + blen;
  d->seq++;
  d->st[ST_FRAMES] += 1;
  d->st[ST_PACKETS] += count;
  d->st[ST_BYTES] += (double)n;
  if ((size_t)n < total) {
    /* the rest must follow before anything else: the stream stays framed */
    d->st[ST_PARTIAL] += 1;
    size_t done = (size_t)n;
    if (done < FRAME_HDR) {
      pend_append(d, hdr + done, FRAME_HDR - done);
      pend_append(d, body, blen);
    } else {
      pend_append(d, body + (done - FRAME_HDR), total - done);
    }
  }
}

/* One retired ring block (tpacket_block_desc at `block`). Called by the ring (ring.c) with the lock held. */
void tcn_fwd_block(void *ctx, const uint8_t *block) {
  fwd_t *f = ctx;
  const struct tpacket_block_desc *bd = (const void *)block;
  uint32_t count = bd->hdr.bh1.num_pkts, first = bd->hdr.bh1.offset_to_first_pkt, blen = bd->hdr.bh1.blk_len;
  if (count == 0 || first >= blen || blen > f->block_size) return;
  const uint8_t *end = block + blen;
  if (f->n == 1) {
    dest_frame(f, &f->d[0], block + first, blen - first, count);
    return;
  }
  for (unsigned i = 0; i < f->n; i++) {
    f->d[i].stage_len = 0;
    f->d[i].stage_count = 0;
  }
  const uint8_t *p = block + first;
  for (uint32_t i = 0; i < count && p + 32 <= end; i++) {
    uint32_t next = rd32(p), snap = rd32(p + 12);
    uint32_t mac = rd16(p + 24);
    size_t len = next != 0 ? next : ALIGN16(mac + snap);
    if (p + len > end) len = (size_t)(end - p);
    if (mac + snap > len) break; /* damaged chain: stop here */
    uint32_t h;
    frame_info(p + mac, snap, f->link, &h);
    dest_t *d = &f->d[h % f->n];
    if (d->stage_len + len <= f->block_size) {
      if (d->stage_count > 0) {
        uint32_t dist = (uint32_t)(d->stage_len - d->stage_last);
        memcpy(d->stage + d->stage_last, &dist, 4);
      }
      memcpy(d->stage + d->stage_len, p, len);
      uint32_t zero = 0;
      memcpy(d->stage + d->stage_len, &zero, 4);
      d->stage_last = (uint32_t)d->stage_len;
      d->stage_len += len;
      d->stage_count++;
    }
    if (next == 0) break;
    p += next;
  }
  for (unsigned i = 0; i < f->n; i++) {
    dest_t *d = &f->d[i];
    if (d->stage_count == 0) continue;
    dest_frame(f, d, d->stage, d->stage_len, d->stage_count);
  }
}

void tcn_fwd_lock(void *ctx) { pthread_mutex_lock(&((fwd_t *)ctx)->mu); }
void tcn_fwd_unlock(void *ctx) { pthread_mutex_unlock(&((fwd_t *)ctx)->mu); }

/*
 * Queues destination i's STATUS frame (the drops since its previous one; `kernel_total`, the
 * ring's kernel drops so far, goes to destination 0) and writes what the socket takes at
 * once. Returns 1 when queued; 0 when the destination is down or its pending buffer is full
 * (the drops then go into the next one). Lock held.
 */
static int fwd_status(fwd_t *f, unsigned i, double now_ms, double kernel_total) {
  dest_t *d = &f->d[i];
  if (d->fd < 0) return 0;
  double kern = i == 0 ? kernel_total : 0;
  double cur[4] = {d->st[ST_DROP_FRAMES], d->st[ST_DROP_PACKETS], d->st[ST_DROP_DATA], kern};
  uint8_t fr[FRAME_HDR + STATUS_BODY];
  memset(fr, 0, sizeof fr);
  fr[0] = TYPE_STATUS;
  put_be32(fr + 4, STATUS_BODY);
  put_be32(fr + 12, f->status_seq);
  put_be64d(fr + FRAME_HDR, now_ms);
  for (int k = 0; k < 4; k++) put_be64d(fr + FRAME_HDR + 8 * (k + 1), cur[k] > d->rep[k] ? cur[k] - d->rep[k] : 0);
  put_be64d(fr + FRAME_HDR + 40, d->st[ST_PACKETS]);
  if (!pend_append(d, fr, sizeof fr)) return 0;
  f->status_seq++;
  for (int k = 0; k < 4; k++)
    if (cur[k] > d->rep[k]) d->rep[k] = cur[k];
  flush_pending(d);
  return 1;
}

/*
 * Sends every destination's STATUS when one is due (`now_ms` wall clock); returns the ms until
 * the next is due (-1: none, status_ms 0). Called by the ring's thread with the lock held.
 */
int tcn_fwd_tick(void *ctx, double now_ms, double kernel_total) {
  fwd_t *f = ctx;
  if (f->status_ms <= 0) return -1;
  if (now_ms >= f->next_status) {
    for (unsigned i = 0; i < f->n; i++) fwd_status(f, i, now_ms, kernel_total);
    f->next_status = now_ms + f->status_ms;
  }
  double wait = f->next_status - now_ms;
  return wait < 1 ? 1 : (int)(wait + 0.999);
}

/* Whether a STATUS is due (the ring's thread then reads the kernel's counters first). Lock held. */
int tcn_fwd_status_due(void *ctx, double now_ms) {
  fwd_t *f = ctx;
  return f->status_ms > 0 && now_ms >= f->next_status;
}

static void fwd_finalize(napi_env env, void *data, void *hint) {
  fwd_t *f = data;
  for (unsigned i = 0; i < f->n; i++) {
    dest_down(&f->d[i], 0);
    free(f->d[i].pend);
    free(f->d[i].stage);
  }
  pthread_mutex_destroy(&f->mu);
  free(f);
}

static fwd_t *get_fwd(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    tcn_throw(env, "EINVAL", NULL, "not a forwarder handle");
    return NULL;
  }
  return p;
}

void *tcn_fwd_get(napi_env env, napi_value v) { return get_fwd(env, v); }

/* fwdCreate(destinations, linkType, blockSize, statusMs) -> handle */
static napi_value js_fwd_create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t n = argc >= 3 ? tcn_get_i64(env, argv[0]) : 0;
  int64_t bs = argc >= 3 ? tcn_get_i64(env, argv[2]) : 0;
  if (n < 1 || n > MAX_DEST || bs < 4096 || bs > (1 << 26)) {
    tcn_throw(env, "EINVAL", NULL, "fwdCreate: 1..32 destinations and a block size of 4 KiB..64 MiB");
    return NULL;
  }
  fwd_t *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  f->status_ms = argc >= 4 ? (double)tcn_get_i64(env, argv[3]) : 0;
  f->n = (unsigned)n;
  f->link = (int)tcn_get_i64(env, argv[1]);
  f->block_size = (size_t)bs;
  for (unsigned i = 0; i < f->n; i++) {
    dest_t *d = &f->d[i];
    d->fd = -1;
    d->pend_cap = f->block_size + FRAME_HDR + PEND_SLACK;
    d->pend = malloc(d->pend_cap);
    d->stage = f->n > 1 ? malloc(f->block_size) : NULL;
  }
  napi_create_external(env, f, fwd_finalize, NULL, &out);
  return out;
}

/* fwdSetFd(handle, dest, fd): the destination's socket (dup'd), or -1 = down. */
static napi_value js_fwd_set_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fwd_t *f = argc >= 3 ? get_fwd(env, argv[0]) : NULL;
  if (f == NULL) return NULL;
  int64_t i = tcn_get_i64(env, argv[1]), fd = tcn_get_i64(env, argv[2]);
  if (i < 0 || i >= f->n) {
    tcn_throw(env, "EINVAL", NULL, "fwdSetFd: no such destination");
    return NULL;
  }
  dest_t *d = &f->d[i];
  int nfd = -1;
  if (fd >= 0) {
    nfd = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0) {
      tcn_throw_errno(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
      return NULL;
    }
    fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
  }
  pthread_mutex_lock(&f->mu);
  dest_down(d, 0);
  if (nfd >= 0) {
    d->fd = nfd;
    d->st[ST_UP] = 1;
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

/* fwdStatus(handle, dest, nowMs, kernelDrops): queues dest's STATUS now; false when down or full. */
static napi_value js_fwd_status(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fwd_t *f = argc >= 4 ? get_fwd(env, argv[0]) : NULL;
  if (f == NULL) return NULL;
  int64_t i = tcn_get_i64(env, argv[1]);
  double now = 0, kern = 0;
  if (i < 0 || i >= f->n || napi_get_value_double(env, argv[2], &now) != napi_ok ||
      napi_get_value_double(env, argv[3], &kern) != napi_ok) {
    tcn_throw(env, "EINVAL", NULL, "fwdStatus: bad arguments");
    return NULL;
  }
  pthread_mutex_lock(&f->mu);
  int ok = fwd_status(f, (unsigned)i, now, kern);
  ok = ok && f->d[i].fd >= 0;
  pthread_mutex_unlock(&f->mu);
  napi_get_boolean(env, ok, &out);
  return out;
}

/* fwdStats(handle, out Float64Array): destinations x ST_COUNT counters. */
static napi_value js_fwd_stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fwd_t *f = argc >= 2 ? get_fwd(env, argv[0]) : NULL;
  if (f == NULL) return NULL;
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || len < (size_t)f->n * ST_COUNT) {
    tcn_throw(env, "EINVAL", NULL, "fwdStats: a Float64Array of destinations x 10");
    return NULL;
  }
  double *o = data;
  pthread_mutex_lock(&f->mu);
  for (unsigned i = 0; i < f->n; i++) {
    flush_pending(&f->d[i]);
    memcpy(o + (size_t)i * ST_COUNT, f->d[i].st, sizeof f->d[i].st);
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

/* fwdShard(buf, linkType, destinations): the destination a frame goes to (tests, docs). */
static napi_value js_fwd_shard(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  size_t len = 0;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    tcn_throw(env, "EINVAL", NULL, "fwdShard: bad arguments");
    return NULL;
  }
  uint32_t h;
  frame_info(data, (uint32_t)len, (int)tcn_get_i64(env, argv[1]), &h);
  int64_t n = tcn_get_i64(env, argv[2]);
  napi_create_uint32(env, n > 0 ? h % (uint32_t)n : 0, &out);
  return out;
}

napi_value tcn_fwd_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "fwdCreate", js_fwd_create);
  tcn_def(env, exports, "fwdSetFd", js_fwd_set_fd);
  tcn_def(env, exports, "fwdStatus", js_fwd_status);
  tcn_def(env, exports, "fwdStats", js_fwd_stats);
  tcn_def(env, exports, "fwdShard", js_fwd_shard);
  return exports;
}

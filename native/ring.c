/*
 * AF_PACKET TPACKET_V3 ring capture. The whole mmapped ring is exposed to JS as ONE external
 * Buffer; on readiness (uv_poll) native walks the ready blocks in order and calls one JS
 * function per block with (blockOffset, numPackets, firstPacketOffset); JS walks the
 * tpacket3_hdr chain itself; the block goes back to the kernel when JS returns.
 *
 * Forward mode (ringForward, the agent): a thread of its own waits on the ring and hands each
 * ready block to the forwarder (forward.c), which writes it to the replayers' sockets, and sends
 * the forwarder's STATUS frames when due. The event loop is not woken per block at all (a Node
 * wake-up costs several times a thread's on a VM: the loop's own bookkeeping, a second
 * epoll_wait, a callback scope per turn); a uv_async handle only keeps the loop alive while
 * the thread runs.
 */
#include "tcn.h"
#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* The mmapped ring, shared by the ring handle and the external Buffer (refcounted). */
typedef struct {
  uint8_t *ptr;
  size_t len;
  int refs;
} ring_map_t;

typedef struct {
  int fd;
  ring_map_t *map;
  unsigned block_size, block_nr, cur;
  int link_type;
  uv_poll_t *poll;
  int refed;
  int in_cb;         /* > 0 while JS is being called for a block */
  int close_pending; /* close requested from inside a callback */
  int closed;
  napi_env env;
  napi_ref on_block, on_batch_end, resource;
  void *fwd;        /* forward mode (ringForward): the agent's forwarder, no JS per block */
  napi_ref fwd_ref; /* keeps the forwarder alive while the ring uses it */
  pthread_t thread; /* forward mode: the thread that waits on the ring */
  int thread_on;
  int hook_on;           /* the env cleanup hook (ring_cleanup_hook) is registered */
  int stop_fd;           /* eventfd that tells the thread to end */
  uv_async_t *keep;      /* forward mode: keeps the event loop alive (ringRef) */
  pthread_mutex_t smu;   /* the counters below (the thread and JS both update them) */
  napi_async_context actx;
  double packets, drops, freezes, blocks;
} ring_t;

static void map_release(ring_map_t *m) {
  if (--m->refs == 0) {
    munmap(m->ptr, m->len);
    free(m);
  }
}

static void buffer_finalize(napi_env env, void *data, void *hint) { map_release(hint); }

static void poll_closed(uv_handle_t *h) { free(h); }

/* Adds the kernel's counters (reset by each read) to the ring's; takes smu. */
static void read_stats(ring_t *r) {
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof st;
  pthread_mutex_lock(&r->smu);
  if (r->fd >= 0 && getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    r->packets += st.tp_packets; /* the kernel's tp_packets already includes tp_drops */
    r->drops += st.tp_drops;
    r->freezes += st.tp_freeze_q_cnt;
  }
  pthread_mutex_unlock(&r->smu);
}

static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Forward mode's thread: every ready block to the forwarder and back to the kernel; STATUS when due. */
static void *fwd_thread(void *arg) {
  ring_t *r = arg;
  struct pollfd pfd[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = r->stop_fd, .events = POLLIN}};
  int timeout = 0;
  for (;;) {
    if (poll(pfd, 2, timeout) < 0 && errno != EINTR) timeout = 10; /* cannot happen; do not spin */
    if (pfd[1].revents != 0) break;
    double done = 0;
    tcn_fwd_lock(r->fwd);
    for (unsigned i = 0; i < r->block_nr; i++) {
      struct tpacket_block_desc *bd =
          (struct tpacket_block_desc *)(r->map->ptr + (size_t)r->cur * r->block_size);
      if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
      tcn_fwd_block(r->fwd, (const uint8_t *)bd);
      __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      r->cur = (r->cur + 1) % r->block_nr;
      done++;
    }
    double now = wall_ms(), drops = 0;
    if (tcn_fwd_status_due(r->fwd, now)) {
      read_stats(r);
      pthread_mutex_lock(&r->smu);
      drops = r->drops;
      pthread_mutex_unlock(&r->smu);
    }
    timeout = tcn_fwd_tick(r->fwd, now, drops);
    tcn_fwd_unlock(r->fwd);
    if (done > 0) {
      pthread_mutex_lock(&r->smu);
      r->blocks += done;
      pthread_mutex_unlock(&r->smu);
    }
  }
  return NULL;
}

static void stop_thread(ring_t *r);

/* At the environment's end (before the forwarder may be finalized): the thread must be gone. */
static void ring_cleanup_hook(void *arg) {
  ring_t *r = arg;
  r->hook_on = 0;
  stop_thread(r);
}

/* Ends forward mode's thread (waits for it). */
static void stop_thread(ring_t *r) {
  if (!r->thread_on) return;
  uint64_t one = 1;
  ssize_t w = write(r->stop_fd, &one, sizeof one);
  (void)w;
  pthread_join(r->thread, NULL);
  r->thread_on = 0;
  close(r->stop_fd);
  r->stop_fd = -1;
}

/* Releases the poll handle, the JS references, the socket and the ring pages. Idempotent. */
static void ring_teardown(ring_t *r, int js_ok) {
  if (r->closed) return;
  r->closed = 1;
  stop_thread(r);
  if (r->hook_on) {
    napi_remove_env_cleanup_hook(r->env, ring_cleanup_hook, r);
    r->hook_on = 0;
  }
  if (r->keep != NULL) {
    uv_close((uv_handle_t *)r->keep, poll_closed);
    r->keep = NULL;
  }
  if (r->poll != NULL) {
    uv_poll_stop(r->poll);
    uv_close((uv_handle_t *)r->poll, poll_closed);
    r->poll = NULL;
  }
  if (js_ok) {
    if (r->on_block) napi_delete_reference(r->env, r->on_block);
    if (r->on_batch_end) napi_delete_reference(r->env, r->on_batch_end);
    if (r->resource) napi_delete_reference(r->env, r->resource);
    if (r->fwd_ref) napi_delete_reference(r->env, r->fwd_ref);
    if (r->actx) napi_async_destroy(r->env, r->actx);
  }
  r->on_block = r->on_batch_end = r->resource = r->fwd_ref = NULL;
  r->fwd = NULL;
  r->actx = NULL;
  read_stats(r);
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  if (r->map != NULL) {
    /* While the Buffer lives, keep its address range valid but give the ring pages back:
       JS reading it after close sees zeros (no block is ever ready), never a fault. */
    if (r->map->refs > 1)
      mmap(r->map->ptr, r->map->len, PROT_READ | PROT_WRITE,
           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    map_release(r->map);
    r->map = NULL;
  }
}

static void ring_finalize(napi_env env, void *data, void *hint) {
  ring_t *r = data;
  ring_teardown(r, 0);
  pthread_mutex_destroy(&r->smu);
  free(r);
}



/*
 * Walks up to `max` ready blocks, calling fn(blockOff, numPkts, firstPktOff) for each.
 * Returns the number of blocks walked, or -1 when the JS function threw (the exception is
 * left pending; that block is still returned to the kernel).
 */
static int ring_walk(ring_t *r, napi_env env, napi_value fn, unsigned max) {
  unsigned done = 0;
  int rc = 0;
  napi_value undef;
  napi_get_undefined(env, &undef);
  r->in_cb++;
  while (done < max && !r->close_pending && !r->closed) {
    struct tpacket_block_desc *bd =
        (struct tpacket_block_desc *)(r->map->ptr + (size_t)r->cur * r->block_size);
    uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    napi_handle_scope hs;
    napi_open_handle_scope(env, &hs);
    napi_value argv[3];
    napi_create_uint32(env, (uint32_t)((size_t)r->cur * r->block_size), &argv[0]);
    napi_create_uint32(env, bd->hdr.bh1.num_pkts, &argv[1]);
    napi_create_uint32(env, bd->hdr.bh1.offset_to_first_pkt, &argv[2]);
    napi_status st = napi_call_function(env, undef, fn, 3, argv, NULL);
    napi_close_handle_scope(env, hs);
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    r->cur = (r->cur + 1) % r->block_nr;
    r->blocks += 1;
    done++;
    if (st != napi_ok) {
      rc = -1;
      break;
    }
  }
  r->in_cb--;
  return rc < 0 ? -1 : (int)done;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  ring_t *r = h->data;
  if (r->closed || r->on_block == NULL) return;
  napi_env env = r->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource, fn, end, undef;
  napi_get_reference_value(env, r->resource, &resource);
  napi_get_reference_value(env, r->on_block, &fn);
  napi_get_reference_value(env, r->on_batch_end, &end);
  napi_get_undefined(env, &undef);
  napi_callback_scope cs;
  napi_open_callback_scope(env, resource, r->actx, &cs);
  int n = ring_walk(r, env, fn, r->block_nr);
  napi_value exc = NULL;
  if (n < 0) {
    napi_get_and_clear_last_exception(env, &exc);
  } else if (n > 0 && !r->close_pending && !r->closed) {
    if (napi_call_function(env, undef, end, 0, NULL, NULL) != napi_ok)
      napi_get_and_clear_last_exception(env, &exc);
  }
  if (r->close_pending) ring_teardown(r, 1);
  napi_close_callback_scope(env, cs);
  if (exc != NULL) napi_fatal_exception(env, exc);
  napi_close_handle_scope(env, hs);
}

static ring_t *get_ring(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    tcn_throw(env, "EINVAL", NULL, "not a ring handle");
    return NULL;
  }
  return p;
}

/* Wraps an opened, mmapped and bound ring into { handle, ring, linkType, blockSize, blockCount }. */
napi_value tcn_ring_wrap(napi_env env, int fd, void *map, size_t map_len, unsigned block_size,
                         unsigned block_nr, int link) {
  ring_t *r = calloc(1, sizeof *r);
  ring_map_t *m = calloc(1, sizeof *m);
  m->ptr = map;
  m->len = map_len;
  m->refs = 2;
  r->fd = fd;
  r->map = m;
  r->block_size = block_size;
  r->block_nr = block_nr;
  r->link_type = link;
  r->refed = 1;
  r->env = env;
  r->stop_fd = -1;
  pthread_mutex_init(&r->smu, NULL);
  napi_value result, handle, ring, v;
  napi_create_object(env, &result);
  napi_create_external(env, r, ring_finalize, NULL, &handle);
  napi_create_external_buffer(env, map_len, map, buffer_finalize, m, &ring);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "ring", ring);
  napi_create_int32(env, link, &v);
  napi_set_named_property(env, result, "linkType", v);
  napi_create_uint32(env, block_size, &v);
  napi_set_named_property(env, result, "blockSize", v);
  napi_create_uint32(env, block_nr, &v);
  napi_set_named_property(env, result, "blockCount", v);
  return result;
}

/* ringStart(handle, onBlock, onBatchEnd): registers the fd with the event loop. */
static napi_value js_ring_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 3 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  if (r->closed || r->poll != NULL) {
    tcn_throw(env, "EINVAL", NULL, "ringStart: ring closed or already started");
    return NULL;
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  r->poll = malloc(sizeof *r->poll);
  int rc = uv_poll_init(loop, r->poll, r->fd);
  if (rc != 0) {
    free(r->poll);
    r->poll = NULL;
    tcn_throw(env, "EINVAL", "uv_poll_init", uv_strerror(rc));
    return NULL;
  }
  r->poll->data = r;
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "tcpcopy.RingCapture", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &r->actx);
  napi_create_reference(env, resource, 1, &r->resource);
  napi_create_reference(env, argv[1], 1, &r->on_block);
  napi_create_reference(env, argv[2], 1, &r->on_batch_end);
  uv_poll_start(r->poll, UV_READABLE, on_poll);
  if (!r->refed) uv_unref((uv_handle_t *)r->poll);
  return NULL;
}

/* ringForward(handle, forwarder): blocks go to the forwarder from a thread of the ring's own. */
static napi_value js_ring_forward(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 2 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  void *fwd = tcn_fwd_get(env, argv[1]);
  if (fwd == NULL) return NULL;
  if (r->closed || r->poll != NULL || r->thread_on) {
    tcn_throw(env, "EINVAL", NULL, "ringForward: ring closed or already started");
    return NULL;
  }
  r->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (r->stop_fd < 0) {
    tcn_throw_errno(env, errno, "eventfd");
    return NULL;
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  r->keep = malloc(sizeof *r->keep);
  uv_async_init(loop, r->keep, NULL);
  if (!r->refed) uv_unref((uv_handle_t *)r->keep);
  r->fwd = fwd;
  napi_create_reference(env, argv[1], 1, &r->fwd_ref);
  int rc = pthread_create(&r->thread, NULL, fwd_thread, r);
  if (rc != 0) {
    close(r->stop_fd);
    r->stop_fd = -1;
    tcn_throw_errno(env, rc, "pthread_create");
    return NULL;
  }
  r->thread_on = 1;
  if (napi_add_env_cleanup_hook(env, ring_cleanup_hook, r) == napi_ok) r->hook_on = 1;
  return NULL;
}

/* ringRef(handle, ref): whether the running capture keeps the event loop alive. */
static napi_value js_ring_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 2 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  bool ref = true;
  napi_get_value_bool(env, argv[1], &ref);
  r->refed = ref;
  uv_handle_t *h = r->poll != NULL ? (uv_handle_t *)r->poll : (uv_handle_t *)r->keep;
  if (h != NULL) {
    if (ref) uv_ref(h);
    else uv_unref(h);
  }
  return NULL;
}

/* ringPoll(handle, maxBlocks, timeoutMs, onBlock): synchronous walk; returns blocks walked. */
static napi_value js_ring_poll(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 4 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  if (r->closed) {
    napi_create_int32(env, 0, &out);
    return out;
  }
  unsigned max = (unsigned)tcn_get_i64(env, argv[1]);
  int timeout = (int)tcn_get_i64(env, argv[2]);
  struct tpacket_block_desc *bd =
      (struct tpacket_block_desc *)(r->map->ptr + (size_t)r->cur * r->block_size);
  if (timeout > 0 && (__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
    poll(&pfd, 1, timeout);
  }
  int n = ring_walk(r, env, argv[3], max);
  if (r->close_pending && r->in_cb == 0) ring_teardown(r, 1);
  if (n < 0) return NULL; /* exception pending */
  napi_create_int32(env, n, &out);
  return out;
}

/* ringStats(handle): [packets (incl. drops), drops, freezes, blocks], accumulated. */
static napi_value js_ring_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 1 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  if (!r->closed) read_stats(r);
  napi_create_array_with_length(env, 4, &out);
  pthread_mutex_lock(&r->smu);
  double vals[4] = {r->packets, r->drops, r->freezes, r->blocks};
  pthread_mutex_unlock(&r->smu);
  for (uint32_t i = 0; i < 4; i++) {
    napi_create_double(env, vals[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

/* ringClose(handle): idempotent; deferred to the end of the walk when called from inside it. */
static napi_value js_ring_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ring_t *r = argc >= 1 ? get_ring(env, argv[0]) : NULL;
  if (r == NULL) return NULL;
  if (r->in_cb > 0) {
    r->close_pending = 1;
    if (r->poll != NULL) uv_poll_stop(r->poll);
  } else {
    ring_teardown(r, 1);
  }
  return NULL;
}

napi_value tcn_ring_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "ringOpen", tcn_ring_open);
  tcn_def(env, exports, "ringStart", js_ring_start);
  tcn_def(env, exports, "ringRef", js_ring_ref);
  tcn_def(env, exports, "ringForward", js_ring_forward);
  tcn_def(env, exports, "ringPoll", js_ring_poll);
  tcn_def(env, exports, "ringStats", js_ring_stats);
  tcn_def(env, exports, "ringClose", js_ring_close);
  return exports;
}

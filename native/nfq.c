/*
 * NFQUEUE transport for intercept on the target (`intercept --nfqueue`): a NETLINK_NETFILTER
 * socket, its readiness on the event loop, and raw datagram recv/send. Nothing here knows the
 * nfnetlink message layout: JS builds the config/verdict messages and parses the queued
 * packets (src/intercept/nfq-wire.ts), so the protocol logic stays testable without a kernel.
 * No libnetfilter_queue dependency: netlink is a plain socket.
 *
 *   nfqOpen(rcvbufBytes)       -> handle   (socket, bind, connect to the kernel, non-blocking)
 *   nfqStart(handle, onReadable)           (uv_poll; onReadable() once per wake-up)
 *   nfqRecv(handle, buf)       -> n > 0 bytes of one datagram, 0 when none is ready,
 *                                 -errno on error (-ENOBUFS: the kernel dropped messages)
 *   nfqSend(handle, buf, len)  -> bytes sent or -errno
 *   nfqClose(handle)                       (idempotent; deferred when inside onReadable)
 */
#include "tcn.h"
#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#ifndef NETLINK_NO_ENOBUFS
#define NETLINK_NO_ENOBUFS 5
#endif

typedef struct {
  int fd;
  uv_poll_t *poll;
  int in_cb, close_pending, closed;
  napi_env env;
  napi_ref on_readable, resource;
  napi_async_context actx;
} nfq_t;

static void nfq_poll_closed(uv_handle_t *h) { free(h); }

static void nfq_teardown(nfq_t *q, int js_ok) {
  if (q->closed) return;
  q->closed = 1;
  if (q->poll != NULL) {
    uv_poll_stop(q->poll);
    uv_close((uv_handle_t *)q->poll, nfq_poll_closed);
    q->poll = NULL;
  }
  if (js_ok) {
    if (q->on_readable) napi_delete_reference(q->env, q->on_readable);
    if (q->resource) napi_delete_reference(q->env, q->resource);
    if (q->actx) napi_async_destroy(q->env, q->actx);
  }
  q->on_readable = q->resource = NULL;
  q->actx = NULL;
  if (q->fd >= 0) close(q->fd);
  q->fd = -1;
}

static void nfq_finalize(napi_env env, void *data, void *hint) {
  nfq_t *q = data;
  nfq_teardown(q, 0);
  free(q);
}

static nfq_t *get_nfq(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    tcn_throw(env, "EINVAL", NULL, "not an nfqueue handle");
    return NULL;
  }
  return p;
}

static napi_value js_nfq_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int rcvbuf = argc >= 1 ? (int)tcn_get_i64(env, argv[0]) : 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    tcn_throw_errno(env, errno, "socket(AF_NETLINK, NETLINK_NETFILTER)");
    return NULL;
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
      connect(fd, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    int e = errno;
    close(fd);
    tcn_throw_errno(env, e, "bind/connect(netlink)");
    return NULL;
  }
  if (rcvbuf > 0) {
    /* SO_RCVBUFFORCE (root) lifts the rmem_max cap; fall back to SO_RCVBUF. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  nfq_t *q = calloc(1, sizeof *q);
  q->fd = fd;
  q->env = env;
  napi_create_external(env, q, nfq_finalize, NULL, &handle);
  return handle;
}

static void nfq_on_poll(uv_poll_t *h, int status, int events) {
  nfq_t *q = h->data;
  if (q->closed || q->on_readable == NULL) return;
  napi_env env = q->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource, fn, undef, exc = NULL;
  napi_get_reference_value(env, q->resource, &resource);
  napi_get_reference_value(env, q->on_readable, &fn);
  napi_get_undefined(env, &undef);
  napi_callback_scope cs;
  napi_open_callback_scope(env, resource, q->actx, &cs);
  q->in_cb++;
  if (napi_call_function(env, undef, fn, 0, NULL, NULL) != napi_ok)
    napi_get_and_clear_last_exception(env, &exc);
  q->in_cb--;
  if (q->close_pending && q->in_cb == 0) nfq_teardown(q, 1);
  napi_close_callback_scope(env, cs);
  if (exc != NULL) napi_fatal_exception(env, exc);
  napi_close_handle_scope(env, hs);
}

static napi_value js_nfq_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq_t *q = argc >= 2 ? get_nfq(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  if (q->closed || q->poll != NULL) {
    tcn_throw(env, "EINVAL", NULL, "nfqStart: closed or already started");
    return NULL;
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  q->poll = malloc(sizeof *q->poll);
  int rc = uv_poll_init(loop, q->poll, q->fd);
  if (rc != 0) {
    free(q->poll);
    q->poll = NULL;
    tcn_throw(env, "EINVAL", "uv_poll_init", uv_strerror(rc));
    return NULL;
  }
  q->poll->data = q;
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "tcpcopy.Nfqueue", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &q->actx);
  napi_create_reference(env, resource, 1, &q->resource);
  napi_create_reference(env, argv[1], 1, &q->on_readable);
  uv_poll_start(q->poll, UV_READABLE, nfq_on_poll);
  return NULL;
}

static napi_value js_nfq_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq_t *q = argc >= 2 ? get_nfq(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  void *data = NULL;
  size_t cap = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &cap) != napi_ok) {
    tcn_throw(env, "EINVAL", NULL, "nfqRecv: expected a Buffer");
    return NULL;
  }
  ssize_t n;
  if (q->closed) {
    n = 0;
  } else {
    do n = recv(q->fd, data, cap, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  }
  napi_create_int32(env, (int32_t)n, &out);
  return out;
}

static napi_value js_nfq_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq_t *q = argc >= 3 ? get_nfq(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  void *data = NULL;
  size_t cap = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &cap) != napi_ok) {
    tcn_throw(env, "EINVAL", NULL, "nfqSend: expected a Buffer");
    return NULL;
  }
  size_t len = (size_t)tcn_get_i64(env, argv[2]);
  if (len > cap) len = cap;
  ssize_t n;
  if (q->closed) {
    n = -EBADF;
  } else {
    do n = send(q->fd, data, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) n = -errno;
  }
  napi_create_int32(env, (int32_t)n, &out);
  return out;
}

static napi_value js_nfq_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq_t *q = argc >= 1 ? get_nfq(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  if (q->in_cb > 0) {
    q->close_pending = 1;
    if (q->poll != NULL) uv_poll_stop(q->poll);
  } else {
    nfq_teardown(q, 1);
  }
  return NULL;
}

napi_value tcn_nfq_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "nfqOpen", js_nfq_open);
  tcn_def(env, exports, "nfqStart", js_nfq_start);
  tcn_def(env, exports, "nfqRecv", js_nfq_recv);
  tcn_def(env, exports, "nfqSend", js_nfq_send);
  tcn_def(env, exports, "nfqClose", js_nfq_close);
  return exports;
}

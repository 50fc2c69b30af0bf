/*
 * Batched sends with sendmmsg: raw IP (AF_INET/SOCK_RAW/IPPROTO_RAW for IPv4 and, opened on the
 * first IPv6 packet, AF_INET6/SOCK_RAW/IPPROTO_RAW, which implies IPV6_HDRINCL; the version
 * nibble of each packet picks the socket, the destination comes from its header) and Ethernet
 * frames (AF_PACKET/SOCK_RAW to one device). JS fills an arena Buffer plus offsets/lengths; one
 * native call sends the whole batch (one sendmmsg per run of packets of one family).
 */
#include "tcn.h"
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1024
#define KIND_RAW_IPV4 0
#define KIND_FRAME 1
/* Bound on consecutive waits for a full socket without progress: 200 waits of <= 1 ms. */
#define MAX_WAITS 200

typedef struct {
  int fd;
  int kind;
  /* raw IPv6 socket, opened on the first IPv6 packet; -1 before, -errno when that failed */
  int fd6;
  int sndbuf;
  char device[64];
  struct sockaddr_ll ll;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in sin[BATCH];
  struct sockaddr_in6 sin6[BATCH];
} sender_t;

/* The raw IPv6 socket of `s` (opened once, with the IPv4 socket's settings); -errno on failure. */
static int sender_fd6(sender_t *s) {
  if (s->fd6 != -1) return s->fd6;
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
  if (fd < 0) {
    s->fd6 = -errno;
    return s->fd6;
  }
  if (s->sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &s->sndbuf, sizeof s->sndbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, sizeof s->sndbuf);
  int one = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
  if (s->device[0] != '\0' &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, s->device, (socklen_t)strlen(s->device)) != 0) {
    int e = errno;
    close(fd);
    s->fd6 = -e;
    return s->fd6;
  }
  s->fd6 = fd;
  return fd;
}

static void sender_finalize(napi_env env, void *data, void *hint) {
  sender_t *s = data;
  if (s->fd >= 0) close(s->fd);
  if (s->fd6 >= 0) close(s->fd6);
  free(s);
}

static sender_t *get_sender(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    tcn_throw(env, "EINVAL", NULL, "not a sender handle");
    return NULL;
  }
  return p;
}

static int copy_ifname(struct ifreq *ifr, const char *name) {
  memset(ifr, 0, sizeof *ifr);
  size_t n = strlen(name);
  if (n >= sizeof ifr->ifr_name) return -1;
  memcpy(ifr->ifr_name, name, n);
  return 0;
}

/* sendOpen(kind, device, sndbufBytes) -> handle. device '' = any (raw IPv4 only). */
static napi_value js_send_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char device[64];
  if (argc < 3 || tcn_get_string(env, argv[1], device, sizeof device) != 0) {
    tcn_throw(env, "EINVAL", NULL, "sendOpen: bad arguments");
    return NULL;
  }
  int kind = (int)tcn_get_i64(env, argv[0]);
  int sndbuf = (int)tcn_get_i64(env, argv[2]);
  int ifindex = 0;
  if (device[0] != '\0') {
    ifindex = (int)if_nametoindex(device);
    if (ifindex == 0) {
      char msg[128];
      snprintf(msg, sizeof msg, "no such network device: %s", device);
      tcn_throw(env, "ENODEV", "if_nametoindex", msg);
      return NULL;
    }
  } else if (kind == KIND_FRAME) {
    tcn_throw(env, "EINVAL", NULL, "sendOpen: a frame sender needs a device");
    return NULL;
  }
  int fd = kind == KIND_FRAME ? socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)
                              : socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
  if (fd < 0) {
    tcn_throw_errno(env, errno, kind == KIND_FRAME ? "socket(AF_PACKET)" : "socket(AF_INET, SOCK_RAW)");
    return NULL;
  }
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (kind == KIND_RAW_IPV4) {
    /* Without IP_RECVERR a raw socket silently swallows ENOBUFS (packet lost, not retried). */
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
  }
  if (kind == KIND_RAW_IPV4 && ifindex != 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)strlen(device)) != 0) {
      int e = errno;
      close(fd);
      tcn_throw_errno(env, e, "setsockopt(SO_BINDTODEVICE)");
      return NULL;
    }
  }
  sender_t *s = calloc(1, sizeof *s);
  s->fd = fd;
  s->kind = kind;
  s->fd6 = -1;
  s->sndbuf = sndbuf;
  memcpy(s->device, device, sizeof s->device);
  s->ll.sll_family = AF_PACKET;
  s->ll.sll_protocol = htons(ETH_P_IP);
  s->ll.sll_ifindex = ifindex;
  s->ll.sll_halen = 6;
  for (int i = 0; i < BATCH; i++) {
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    if (kind == KIND_FRAME) {
      s->msgs[i].msg_hdr.msg_name = &s->ll;
      s->msgs[i].msg_hdr.msg_namelen = sizeof s->ll;
    } else {
      s->sin[i].sin_family = AF_INET;
      s->msgs[i].msg_hdr.msg_name = &s->sin[i];
      s->msgs[i].msg_hdr.msg_namelen = sizeof s->sin[i];
    }
  }
  napi_create_external(env, s, sender_finalize, NULL, &out);
  return out;
}

static void wait_writable(int fd, int err) {
  if (err == ENOBUFS) {
    /* ENOBUFS (device queue full) does not wake poll(): back off briefly. */
    struct timespec ts = {0, 200 * 1000};
    nanosleep(&ts, NULL);
  } else {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    poll(&pfd, 1, 1);
  }
}

/*
 * sendBatch(handle, arena, offsets: Uint32Array, lengths: Uint32Array, count, result: Float64Array)
 * Sends packets 0..count-1; result += [sent, failed, retried], result[3] = last failing errno.
 */
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sender_t *s = argc >= 6 ? get_sender(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  uint8_t *arena;
  size_t arena_len, n_off, n_len, n_res;
  uint32_t *offs, *lens;
  double *res;
  napi_typedarray_type t;
  napi_value ab;
  size_t bo;
  if (napi_get_buffer_info(env, argv[1], (void **)&arena, &arena_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &t, &n_off, (void **)&offs, &ab, &bo) != napi_ok ||
      t != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[3], &t, &n_len, (void **)&lens, &ab, &bo) != napi_ok ||
      t != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[5], &t, &n_res, (void **)&res, &ab, &bo) != napi_ok ||
      t != napi_float64_array || n_res < 4) {
    tcn_throw(env, "EINVAL", NULL, "sendBatch: bad arguments");
    return NULL;
  }
  size_t count = (size_t)tcn_get_i64(env, argv[4]);
  if (count > n_off) count = n_off;
  if (count > n_len) count = n_len;
  if (s->fd < 0) {
    res[1] += (double)count;
    res[3] = EBADF;
    return NULL;
  }
  size_t i = 0;
  while (i < count) {
    unsigned n = 0;
    /* Fill up to BATCH messages of one IP family (raw IP: a run of IPv4 or of IPv6 packets),
       skipping malformed slots (counted as failed). */
    int v6 = -1;
    while (i < count && n < BATCH) {
      uint32_t off = offs[i], len = lens[i];
      int six = s->kind == KIND_RAW_IPV4 && (size_t)off < arena_len && (arena[off] >> 4) == 6;
      if ((size_t)off + len > arena_len || len < (six ? 40u : 20u)) {
        i++;
        res[1] += 1;
        res[3] = EINVAL;
        continue;
      }
      if (v6 == -1) v6 = six;
      else if (six != v6) break; /* the other family: next run */
      i++;
      s->iov[n].iov_base = arena + off;
      s->iov[n].iov_len = len;
      if (s->kind == KIND_RAW_IPV4) {
        if (six) {
          s->sin6[n].sin6_family = AF_INET6;
          memcpy(&s->sin6[n].sin6_addr, arena + off + 24, 16);
          s->msgs[n].msg_hdr.msg_name = &s->sin6[n];
          s->msgs[n].msg_hdr.msg_namelen = sizeof s->sin6[n];
        } else {
          memcpy(&s->sin[n].sin_addr, arena + off + 16, 4);
          s->msgs[n].msg_hdr.msg_name = &s->sin[n];
          s->msgs[n].msg_hdr.msg_namelen = sizeof s->sin[n];
        }
      }
      n++;
    }
    int fd = s->fd;
    if (v6 == 1) {
      fd = sender_fd6(s);
      if (fd < 0) {
        /* no IPv6 raw socket (IPv6 disabled, no permission): these packets fail */
        res[1] += n;
        res[3] = -fd;
        continue;
      }
    }
    unsigned j = 0, waits = 0;
    while (j < n) {
      int r = sendmmsg(fd, s->msgs + j, n - j, MSG_DONTWAIT);
      if (r > 0) {
        j += (unsigned)r;
        res[0] += r;
        waits = 0;
        continue;
      }
      int e = r == 0 ? EAGAIN : errno;
      if (e == EINTR) continue;
      if ((e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) && waits < MAX_WAITS) {
        res[2] += 1;
        waits++;
        wait_writable(fd, e);
        continue;
      }
      res[1] += 1; /* skip the refused packet, go on with the rest */
      res[3] = e;
      j++;
    }
  }
  return NULL;
}

/* sendClose(handle): idempotent. */
static napi_value js_send_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sender_t *s = argc >= 1 ? get_sender(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (s->fd6 >= 0) close(s->fd6);
  s->fd6 = -2; /* closed: not reopened */
  return NULL;
}

/* deviceInfo(name) -> { ifindex, hatype, mtu, mac: Buffer(6) } | null. */
static napi_value js_device_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char device[64];
  struct ifreq ifr;
  napi_get_null(env, &out);
  if (argc < 1 || tcn_get_string(env, argv[0], device, sizeof device) != 0 ||
      copy_ifname(&ifr, device) != 0)
    return out;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  int ok = ioctl(fd, SIOCGIFINDEX, &ifr) == 0;
  int ifindex = ifr.ifr_ifindex;
  copy_ifname(&ifr, device);
  ok = ok && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0;
  int hatype = ifr.ifr_hwaddr.sa_family;
  uint8_t mac[6];
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  copy_ifname(&ifr, device);
  ok = ok && ioctl(fd, SIOCGIFMTU, &ifr) == 0;
  int mtu = ifr.ifr_mtu;
  close(fd);
  if (!ok) return out;
  napi_create_object(env, &out);
  napi_create_int32(env, ifindex, &v);
  napi_set_named_property(env, out, "ifindex", v);
  napi_create_int32(env, hatype, &v);
  napi_set_named_property(env, out, "hatype", v);
  napi_create_int32(env, mtu, &v);
  napi_set_named_property(env, out, "mtu", v);
  void *data;
  napi_create_buffer_copy(env, 6, mac, &data, &v);
  napi_set_named_property(env, out, "mac", v);
  return out;
}

napi_value tcn_send_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "sendOpen", js_send_open);
  tcn_def(env, exports, "sendBatch", js_send_batch);
  tcn_def(env, exports, "sendClose", js_send_close);
  tcn_def(env, exports, "deviceInfo", js_device_info);
  return exports;
}

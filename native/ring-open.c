/*
 * Opening a TPACKET_V3 capture ring: device lookup, BPF filter (with the direction prefix),
 * PACKET_VERSION, PACKET_RX_RING, mmap, and bind last so nothing is queued before the filter.
 */
#include "tcn.h"
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101

/* Returns the ARPHRD_* type of `ifname`, or -1. */
static int device_hatype(const char *ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  size_t n = strlen(ifname);
  if (n >= sizeof ifr.ifr_name) n = sizeof ifr.ifr_name - 1;
  memcpy(ifr.ifr_name, ifname, n);
  int rc = ioctl(s, SIOCGIFHWADDR, &ifr);
  close(s);
  return rc < 0 ? -1 : ifr.ifr_hwaddr.sa_family;
}

#define DIR_IN 0
#define DIR_OUT 1
#define DIR_BOTH 2

/*
 * ringOpen(device, snaplen, blockSize, blockCount, retireMs, direction, filter)
 *   -> { handle, ring, linkType, blockSize, blockCount }
 */
napi_value tcn_ring_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char device[IFNAMSIZ + 8], filter[8192];
  if (argc < 7 || tcn_get_string(env, argv[0], device, sizeof device) != 0 ||
      tcn_get_string(env, argv[6], filter, sizeof filter) != 0) {
    tcn_throw(env, "EINVAL", NULL, "ringOpen: bad arguments (device name too long?)");
    return NULL;
  }
  int snaplen = (int)tcn_get_i64(env, argv[1]);
  unsigned block_size = (unsigned)tcn_get_i64(env, argv[2]);
  unsigned block_nr = (unsigned)tcn_get_i64(env, argv[3]);
  unsigned retire = (unsigned)tcn_get_i64(env, argv[4]);
  int direction = (int)tcn_get_i64(env, argv[5]);

  int ifindex = 0, sock_type = SOCK_DGRAM, link = LINKTYPE_RAW, dlt = DLT_RAW;
  if (strcmp(device, "any") != 0) {
    ifindex = (int)if_nametoindex(device);
    if (ifindex == 0) {
      char msg[128];
      snprintf(msg, sizeof msg, "no such network device: %s", device);
      tcn_throw(env, "ENODEV", "if_nametoindex", msg);
      return NULL;
    }
    int hatype = device_hatype(device);
    if (hatype == ARPHRD_ETHER || hatype == ARPHRD_LOOPBACK) {
      sock_type = SOCK_RAW;
      link = LINKTYPE_ETHERNET;
      dlt = DLT_EN10MB;
    }
  }

  char err[PCAP_ERRBUF_SIZE + 64];
  struct sock_filter *prog;
  unsigned plen;
  if (tcn_bpf_compile(filter, dlt, snaplen, &prog, &plen, err, sizeof err) != 0) {
    tcn_throw(env, "EBADFILTER", "pcap_compile", err);
    return NULL;
  }

  /* Protocol 0: nothing is queued until bind() below, after filter and ring are set. */
  int fd = socket(AF_PACKET, sock_type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    free(prog);
    tcn_throw_errno(env, e, "socket(AF_PACKET)");
    return NULL;
  }
  const char *fail = NULL;
  int e = 0;
  int one = 1, ver = TPACKET_V3;
  int drop_outgoing = 0, keep_outgoing_only = direction == DIR_OUT;
  if (direction == DIR_IN &&
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
    drop_outgoing = 1; /* old kernel: do it in the filter instead */
  if (drop_outgoing || keep_outgoing_only) {
    /* Prefix: ld pkttype; jeq #PACKET_OUTGOING; ret #0 on the unwanted side. */
    memmove(prog + 3, prog, plen * sizeof *prog);
    prog[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
    prog[1] = keep_outgoing_only
                  ? (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 1, 0)
                  : (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1);
    prog[2] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
    plen += 3;
  }
  struct sock_fprog fprog = {.len = (unsigned short)plen, .filter = prog};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) != 0) {
    fail = "setsockopt(SO_ATTACH_FILTER)";
    goto out;
  }
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) != 0) {
    fail = "setsockopt(PACKET_VERSION)";
    goto out;
  }
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  req.tp_block_size = block_size;
  req.tp_block_nr = block_nr;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = (block_size / 2048) * block_nr;
  req.tp_retire_blk_tov = retire;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) {
    fail = "setsockopt(PACKET_RX_RING)";
    goto out;
  }
  size_t map_len = (size_t)block_size * block_nr;
  void *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) {
    fail = "mmap(ring)";
    goto out;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) {
    e = errno;
    munmap(map, map_len);
    errno = e;
    fail = "bind(AF_PACKET)";
    goto out;
  }
  free(prog);

  return tcn_ring_wrap(env, fd, map, map_len, block_size, block_nr, link);

out:
  e = errno;
  free(prog);
  close(fd);
  tcn_throw_errno(env, e, fail);
  return NULL;
}

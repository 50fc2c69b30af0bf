/* BPF compilation through libpcap (pcap_open_dead + pcap_compile), plus small helpers. */
#include "tcn.h"
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tcn_throw(napi_env env, const char *code, const char *syscall, const char *message) {
  napi_value msg, err, v;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "code", v);
  if (syscall != NULL) {
    napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "syscall", v);
  }
  napi_throw(env, err);
}

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EAGAIN: return "EAGAIN";
    case ENETDOWN: return "ENETDOWN";
    case EMSGSIZE: return "EMSGSIZE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EBUSY: return "EBUSY";
    default: return "EUNKNOWN";
  }
}

void tcn_throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  tcn_throw(env, errno_name(err), syscall, msg);
}

void tcn_def(napi_env env, napi_value obj, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, obj, name, fn);
}

int tcn_get_string(napi_env env, napi_value v, char *out, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return -1;
  return len + 1 >= cap ? -1 : 0;
}

int64_t tcn_get_i64(napi_env env, napi_value v) {
  int64_t n = 0;
  if (napi_get_value_int64(env, v, &n) != napi_ok) return 0;
  return n;
}

int tcn_bpf_compile(const char *filter, int dlt, int snaplen, struct sock_filter **out,
                    unsigned *count, char *err, size_t errcap) {
  pcap_t *p = pcap_open_dead(dlt, snaplen);
  if (p == NULL) {
    snprintf(err, errcap, "pcap_open_dead failed");
    return -1;
  }
  struct bpf_program prog;
  if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    snprintf(err, errcap, "%s", pcap_geterr(p));
    pcap_close(p);
    return -1;
  }
  /* struct bpf_insn and struct sock_filter share one layout (u16 code, u8 jt, u8 jf, u32 k). */
  struct sock_filter *insns = malloc(sizeof(struct sock_filter) * (prog.bf_len + 4));
  if (insns == NULL) {
    pcap_freecode(&prog);
    pcap_close(p);
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  memcpy(insns, prog.bf_insns, sizeof(struct sock_filter) * prog.bf_len);
  *count = prog.bf_len;
  *out = insns;
  pcap_freecode(&prog);
  pcap_close(p);
  return 0;
}

/* bpfCompile(filter: string, dlt: number, snaplen: number): Buffer of sock_filter insns. */
static napi_value js_bpf_compile(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char filter[8192];
  if (argc < 3 || tcn_get_string(env, argv[0], filter, sizeof filter) != 0) {
    tcn_throw(env, "EINVAL", NULL, "bpfCompile(filter, dlt, snaplen): bad arguments");
    return NULL;
  }
  struct sock_filter *insns;
  unsigned n;
  char err[PCAP_ERRBUF_SIZE + 64];
  if (tcn_bpf_compile(filter, (int)tcn_get_i64(env, argv[1]), (int)tcn_get_i64(env, argv[2]),
                      &insns, &n, err, sizeof err) != 0) {
    tcn_throw(env, "EBADFILTER", "pcap_compile", err);
    return NULL;
  }
  napi_value buf;
  void *data;
  napi_create_buffer_copy(env, n * sizeof(struct sock_filter), insns, &data, &buf);
  free(insns);
  return buf;
}

/* errnoText(n: number): string (strerror). */
static napi_value js_errno_text(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int n = argc > 0 ? (int)tcn_get_i64(env, argv[0]) : 0;
  char text[200];
  snprintf(text, sizeof text, "%s (%s)", strerror(n), errno_name(n));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

napi_value tcn_bpf_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "bpfCompile", js_bpf_compile);
  tcn_def(env, exports, "errnoText", js_errno_text);
  return exports;
}

/*
 * Shared declarations of the tcpcopy native packet I/O addon (tcpcopy_native.node).
 * Plain C against node_api.h (NAPI_VERSION 8) and libuv; see src/io/native.ts for the
 * JS-facing contract.
 */
#ifndef TCPCOPY_NATIVE_TCN_H
#define TCPCOPY_NATIVE_TCN_H
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <linux/filter.h>
#include <stdint.h>

/* Registers the functions of each part on `exports`. */
napi_value tcn_ring_init(napi_env env, napi_value exports);
napi_value tcn_send_init(napi_env env, napi_value exports);
napi_value tcn_bpf_init(napi_env env, napi_value exports);
napi_value tcn_fwd_init(napi_env env, napi_value exports);

/* The agent's forwarder (forward.c): the handle behind a JS value (throws and returns NULL if none). */
void *tcn_fwd_get(napi_env env, napi_value v);
/* Forwards one retired TPACKET_V3 block (its tpacket_block_desc at `block`). Lock held. */
void tcn_fwd_block(void *fwd, const uint8_t *block);
/* The forwarder's mutex: held around tcn_fwd_block / tcn_fwd_tick by the ring's thread. */
void tcn_fwd_lock(void *fwd);
void tcn_fwd_unlock(void *fwd);
/* Whether a STATUS is due at `now_ms` (wall clock). Lock held. */
int tcn_fwd_status_due(void *fwd, double now_ms);
/* Sends the STATUS frames when due; returns the ms until the next is due, -1 for never. Lock held. */
int tcn_fwd_tick(void *fwd, double now_ms, double kernel_total);

/* Throws a JS Error whose `code` is `code` (e.g. "EPERM") and whose `syscall` is `syscall`. */
void tcn_throw(napi_env env, const char *code, const char *syscall, const char *message);
/* Throws for a failed system call using errno `err`. */
void tcn_throw_errno(napi_env env, int err, const char *syscall);
/* Defines a function property on `obj`. */
void tcn_def(napi_env env, napi_value obj, const char *name, napi_callback cb);
/* Reads a UTF-8 string argument into `out` (NUL-terminated). Returns 0 on success. */
int tcn_get_string(napi_env env, napi_value v, char *out, size_t cap);
/* Reads a number argument as int64 (0 when not a number). */
int64_t tcn_get_i64(napi_env env, napi_value v);

/* ringOpen(device, snaplen, blockSize, blockCount, retireMs, direction, filter) (ring-open.c). */
napi_value tcn_ring_open(napi_env env, napi_callback_info info);
/* Wraps an opened ring fd and its mapping into the JS result object of ringOpen (ring.c). */
napi_value tcn_ring_wrap(napi_env env, int fd, void *map, size_t map_len, unsigned block_size,
                         unsigned block_nr, int link);

/*
 * Compiles a tcpdump-syntax filter for pcap DLT `dlt` with `snaplen` into a freshly
 * malloc'd instruction array (*out, *count). On failure writes libpcap's message to `err`
 * and returns -1.
 */
int tcn_bpf_compile(const char *filter, int dlt, int snaplen, struct sock_filter **out,
                    unsigned *count, char *err, size_t errcap);
#endif

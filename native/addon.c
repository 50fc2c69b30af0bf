#include "tcn.h"
/* NFQUEUE transport (nfq.c), for intercept --nfqueue. */
napi_value tcn_nfq_init(napi_env env, napi_value exports);
/* RLIMIT_NOFILE (rlimit.c). */
napi_value tcn_rlimit_init(napi_env env, napi_value exports);
static napi_value init(napi_env env, napi_value exports) {
  tcn_ring_init(env, exports);
  tcn_send_init(env, exports);
  tcn_bpf_init(env, exports);
  tcn_fwd_init(env, exports);
  tcn_nfq_init(env, exports);
  tcn_rlimit_init(env, exports);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

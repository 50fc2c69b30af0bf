/*
 * Open-files limit (RLIMIT_NOFILE), which Node has no API for.
 *
 *   nofileLimit(raise) -> [soft, hard, errno]
 *     With raise true, first lifts the soft limit to the hard one (as nginx's
 *     worker_rlimit_nofile and Node's own start-up do); when the hard limit is unlimited, to the
 *     largest value the kernel takes (fs.nr_open), found by halving from 2^20. Then reports
 *     the limits now in force (-1 = unlimited) and the errno of a failed raise (0 = none).
 */
#include "tcn.h"
#include <errno.h>
#include <sys/resource.h>

static double lim_num(rlim_t v) { return v == RLIM_INFINITY ? -1.0 : (double)v; }

static napi_value js_nofile_limit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  bool raise = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_bool(env, argv[0], &raise);
  struct rlimit rl;
  int err = 0;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    tcn_throw_errno(env, errno, "getrlimit(RLIMIT_NOFILE)");
    return NULL;
  }
  if (raise && rl.rlim_cur != rl.rlim_max) {
    rlim_t want = rl.rlim_max != RLIM_INFINITY ? rl.rlim_max : (rlim_t)1 << 20;
    for (;;) {
      struct rlimit nl = {want, rl.rlim_max};
      if (setrlimit(RLIMIT_NOFILE, &nl) == 0) break;
      err = errno;
      if (rl.rlim_max != RLIM_INFINITY || want / 2 <= rl.rlim_cur) break;
      want /= 2;
      err = 0;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) err = errno;
  }
  napi_create_array_with_length(env, 3, &out);
  napi_create_double(env, lim_num(rl.rlim_cur), &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, lim_num(rl.rlim_max), &v);
  napi_set_element(env, out, 1, v);
  napi_create_int32(env, err, &v);
  napi_set_element(env, out, 2, v);
  return out;
}

napi_value tcn_rlimit_init(napi_env env, napi_value exports) {
  tcn_def(env, exports, "nofileLimit", js_nofile_limit);
  return exports;
}

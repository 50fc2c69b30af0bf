{
  "targets": [
    {
      "target_name": "tcpcopy_native",
      "sources": [
        "native/addon.c",
        "native/ring.c",
        "native/ring-open.c",
        "native/forward.c",
        "native/sendmm.c",
        "native/bpf.c",
        "native/nfq.c",
        "native/rlimit.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lpcap"]
    }
  ]
}

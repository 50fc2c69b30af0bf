/*
 * wake-probe: the CPU a small C process spends per wake-up on this machine, the baseline for
 * bench/platform.ts (issue 7). Compiled by the benchmark with the system's cc.
 *   wake-probe timer RATE COUNT   epoll_wait with a 1000/RATE ms timeout, COUNT times
 *   wake-probe udp PORT COUNT     blocks in epoll_wait on a UDP socket bound to 127.0.0.1:PORT
 *                                 until COUNT datagrams came (or 2 s pass without one)
 * Prints one JSON line: {"wakeups":N,"cpuUs":X} (user + system CPU between the first and the
 * last wake-up). Prints "ready" on stderr once the socket is bound.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: wake-probe timer RATE COUNT | udp PORT COUNT\n");
    return 2;
  }
  int count = atoi(argv[3]);
  int ep = epoll_create1(0);
  struct epoll_event ev;
  if (strcmp(argv[1], "timer") == 0) {
    int ms = 1000 / atoi(argv[2]);
    epoll_wait(ep, &ev, 1, ms);
    double c0 = cpu_us();
    for (int i = 0; i < count; i++) epoll_wait(ep, &ev, 1, ms);
    printf("{\"wakeups\":%d,\"cpuUs\":%.1f}\n", count, cpu_us() - c0);
    return 0;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[2]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("bind");
    return 1;
  }
  ev.events = EPOLLIN;
  ev.data.fd = s;
  epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
  fprintf(stderr, "ready\n");
  char buf[64];
  int got = 0, wakeups = 0;
  double c0 = 0;
  while (got < count) {
    if (epoll_wait(ep, &ev, 1, got == 0 ? 10000 : 2000) <= 0) break;
    if (got == 0) c0 = cpu_us();
    else wakeups++;
    while (recv(s, buf, sizeof buf, 0) > 0) got++;
  }
  printf("{\"wakeups\":%d,\"cpuUs\":%.1f}\n", wakeups, cpu_us() - c0);
  return 0;
}

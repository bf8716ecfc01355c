/*
 * Helpers shared by loadgen.c and udpgen.c: errors, the clock, IPv4
 * addresses and whole reads and writes on a blocking socket. Define
 * PROGRAM (the name errors start with) before including it.
 */
#ifndef BENCH_IO_H
#define BENCH_IO_H

static void die(const char *what) {
  fprintf(stderr, PROGRAM ": %s: %s\n", what, strerror(errno));
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void parse_addr(const char *text, struct sockaddr_in *addr) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (colon == NULL || (size_t)(colon - text) >= sizeof host) {
    fprintf(stderr, PROGRAM ": cannot parse address %s: expected IPV4:PORT\n", text);
    exit(2);
  }
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = 0;
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
    fprintf(stderr, PROGRAM ": cannot parse address %s: not an IPv4 literal\n", text);
    exit(2);
  }
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_exact(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

#endif

/*
 * Load generator and target server for scripts/bench.ts.
 *
 * A relay written in JavaScript can move more than 1 GB/s on loopback, so
 * the load has to come from C or the load generator is what gets measured.
 * Everything here speaks IPv4 on loopback only.
 *
 *   loadgen target
 *       Listens on 127.0.0.1 (ephemeral port), prints "port N", serves until
 *       its stdin closes. A client first sends a 16-byte header: byte 0 is
 *       'E' (echo everything that follows), 'C' (echo `n` bytes, then close)
 *       or 'S' (source and sink: send `n` bytes, discard what arrives, close
 *       once `n` bytes went each way); bytes 8..15 hold `n` (little-endian).
 *       One epoll thread.
 *   loadgen bulk PROXY TARGET STREAMS BYTES
 *       STREAMS connections share BYTES each way ('S' mode), all flowing at
 *       once; the clock starts once every stream has finished its handshake.
 *   loadgen rate PROXY TARGET CONCURRENCY SECONDS MAX
 *       CONCURRENCY threads loop: connect, SOCKS5 no-auth handshake, CONNECT,
 *       echo 32 bytes, wait for the close; for SECONDS or MAX connections.
 *   loadgen latency PROXY TARGET COUNT SECONDS
 *       One session, COUNT sequential 64-byte echoes (or as many as fit in
 *       SECONDS); p50/p99 round trip.
 *   loadgen guess PROXY TARGET CLIENTS SECONDS SPREAD [FIRST]
 *       CLIENTS threads guess passwords of the LOADGEN_AUTH user until
 *       SECONDS pass or stdin closes: connect, offer method 02, send the user
 *       name with a wrong password, read the answer until the server closes,
 *       repeat at once. SPREAD says where guesses come from: "one" (every
 *       thread from 127.100.0.1), "each" (thread i from 127.100.0.i+1) or
 *       "new" (every guess from a loopback address of its own, the FIRSTth
 *       (default 0) of 127.101.0.1, 127.101.0.2, ... onwards, so that a
 *       per-address throttle never engages).
 *       Prints "ready" once the threads run, and at the end the counts of
 *       guesses refused with 01 01 after 500 ms or more ("slow": the
 *       password was checked) and sooner ("fast"), and of other outcomes.
 *   loadgen hold PROXY TARGET COUNT SECONDS
 *       Opens COUNT idle sessions (each checked with a 1-byte echo), prints
 *       "ready OPENED FAILED", holds them until stdin closes or SECONDS pass.
 *   loadgen startup SECONDS PATTERNS COMMAND [ARG...]
 *       Forks and execs COMMAND once, in a process group of its own, with
 *       its stdout and stderr on one pipe, and times from just before the
 *       fork the first moment the output holds each of PATTERNS (up to 4
 *       strings separated by '|'); then kills the group. Fails when COMMAND
 *       exits, or SECONDS pass, before every pattern was seen.
 *
 * Sessions end with the target closing first ('C' and 'S' modes): the side
 * that closes first keeps the connection in TIME_WAIT, and there it holds
 * the target's listening port rather than an ephemeral one. Thousands of
 * TIME_WAIT ephemeral ports would starve servers that bind their outgoing
 * sockets to port 0 before connecting (Dante does) on later measurements.
 *
 * PROXY is HOST:PORT of a SOCKS5 server, or "-" to connect to TARGET
 * directly. With LOADGEN_AUTH=USER:PASSWORD in the environment, sessions
 * offer only method 02 and log in with it (RFC 1929) before the CONNECT.
 * With LOADGEN_PROXY_HEADER=v1 or v2, every session that bulk, rate, latency
 * or hold opens through a proxy starts with a PROXY protocol header of that
 * version (HAProxy's send-proxy, send-proxy-v2) naming the client
 * 198.51.100.7 (TEST-NET-2), a source port that changes per session, and
 * the proxy's address; it goes out in one write with the SOCKS5 greeting.
 * The measuring commands print one JSON object on stdout.
 * Every socket has 10 s send and receive timeouts, so no step waits forever.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK (256 * 1024)
#define HEADER_LEN 16
#define ECHO_LEN 32
#define PING_LEN 64
#define IO_TIMEOUT_S 10

static struct sockaddr_in proxy_addr, target_addr;
static int direct;
/* LOADGEN_AUTH: the RFC 1929 request (01 ULEN UNAME PLEN PASSWD), or auth_len 0. */
static unsigned char auth_user[256], auth_request[513];
static size_t auth_user_len, auth_len;
/* LOADGEN_PROXY_HEADER: 0 (none), 1 or 2 (the PROXY protocol version), and the next session's source port. */
#define PROXY_HEADER_MAX 108
#define PROXY_CLIENT "198.51.100.7"
static int proxy_header_version;
static atomic_uint proxy_header_sessions;

#define PROGRAM "loadgen"
#include "bench_io.h"

/* Writes the PROXY protocol header of LOADGEN_PROXY_HEADER into `buf`; returns its length (0 without one). */
static size_t proxy_header(unsigned char *buf) {
  if (proxy_header_version == 0) return 0;
  uint16_t port = (uint16_t)(1024 + atomic_fetch_add(&proxy_header_sessions, 1) % 64000);
  struct in_addr client;
  inet_pton(AF_INET, PROXY_CLIENT, &client);
  if (proxy_header_version == 1) {
    char server[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &proxy_addr.sin_addr, server, sizeof server);
    return (size_t)snprintf((char *)buf, PROXY_HEADER_MAX, "PROXY TCP4 %s %s %u %u\r\n", PROXY_CLIENT, server,
                            port, ntohs(proxy_addr.sin_port));
  }
  static const unsigned char signature[12] = {13, 10, 13, 10, 0, 13, 10, 'Q', 'U', 'I', 'T', 10};
  memcpy(buf, signature, 12);
  buf[12] = 0x21; /* version 2, PROXY */
  buf[13] = 0x11; /* TCP over IPv4 */
  buf[14] = 0, buf[15] = 12;
  uint16_t source_port = htons(port);
  memcpy(buf + 16, &client, 4);
  memcpy(buf + 20, &proxy_addr.sin_addr, 4);
  memcpy(buf + 24, &source_port, 2);
  memcpy(buf + 26, &proxy_addr.sin_port, 2);
  return 28;
}

/* Connects to the proxy (or the target when direct) and runs the SOCKS5
 * no-auth CONNECT handshake to the target. Returns the socket or -1. */
static int open_session(int nodelay) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (nodelay) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  const struct sockaddr_in *to = direct ? &target_addr : &proxy_addr;
  if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0) goto fail;
  if (direct) return fd;
  unsigned char first[PROXY_HEADER_MAX + 3], choice[2];
  size_t header_len = proxy_header(first);
  unsigned char *greeting = first + header_len;
  greeting[0] = 5, greeting[1] = 1, greeting[2] = auth_len > 0 ? 2 : 0;
  if (write_all(fd, first, header_len + 3) < 0 || read_exact(fd, choice, 2) < 0) goto fail;
  if (choice[0] != 5 || choice[1] != greeting[2]) goto fail;
  if (auth_len > 0) {
    unsigned char status[2];
    if (write_all(fd, auth_request, auth_len) < 0 || read_exact(fd, status, 2) < 0) goto fail;
    if (status[0] != 1 || status[1] != 0) goto fail;
  }
  unsigned char req[10] = {5, 1, 0, 1};
  memcpy(req + 4, &target_addr.sin_addr, 4);
  memcpy(req + 8, &target_addr.sin_port, 2);
  unsigned char rep[262];
  if (write_all(fd, req, 10) < 0 || read_exact(fd, rep, 4) < 0) goto fail;
  if (rep[0] != 5 || rep[1] != 0) goto fail;
  size_t rest;
  if (rep[3] == 1) rest = 6;
  else if (rep[3] == 4) rest = 18;
  else if (rep[3] == 3) {
    if (read_exact(fd, rep, 1) < 0) goto fail;
    rest = (size_t)rep[0] + 2;
  } else goto fail;
  if (read_exact(fd, rep, rest) < 0) goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

static void make_header(unsigned char *hdr, char mode, uint64_t n) {
  memset(hdr, 0, HEADER_LEN);
  hdr[0] = (unsigned char)mode;
  for (int i = 0; i < 8; i++) hdr[8 + i] = (unsigned char)(n >> (8 * i));
}

/* ---- target ---------------------------------------------------------- */

struct conn {
  unsigned char hdr[HEADER_LEN];
  size_t hdr_len;
  char mode; /* 0 until the header is complete */
  uint64_t n, sent, received;
  char *buf; /* echo bytes not yet written back */
  size_t buf_len, buf_off;
  int eof;
};

static struct conn **conns;
static size_t conns_cap;
static int epfd;
static char scratch[IO_CHUNK];
static const char zeros[IO_CHUNK];

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) die("epoll_ctl");
}

static void drop(int fd) {
  struct conn *c = conns[fd];
  epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(c->buf);
  free(c);
  conns[fd] = NULL;
}

/* Takes bytes that arrived after the header. Returns 0, or -1 to drop. */
static int absorb(struct conn *c, const char *p, size_t len) {
  if (c->mode == 'S') {
    c->received += len;
    return 0;
  }
  if (len == 0) return 0;
  if (c->buf == NULL) c->buf = malloc(IO_CHUNK);
  if (c->buf == NULL) return -1;
  memcpy(c->buf + c->buf_len, p, len);
  c->buf_len += len;
  return 0;
}

/* Reads what is available; returns -1 to drop the connection. */
static int target_read(int fd, struct conn *c) {
  size_t room = IO_CHUNK;
  if (c->mode == 'E' || c->mode == 'C') room = IO_CHUNK - c->buf_len;
  if (room == 0) return 0;
  ssize_t n = recv(fd, scratch, room, 0);
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  if (n == 0) {
    c->eof = 1;
    return 0;
  }
  size_t off = 0;
  if (c->mode == 0) {
    size_t take = HEADER_LEN - c->hdr_len;
    if (take > (size_t)n) take = (size_t)n;
    memcpy(c->hdr + c->hdr_len, scratch, take);
    c->hdr_len += take;
    off = take;
    if (c->hdr_len < HEADER_LEN) return 0;
    if (c->hdr[0] != 'E' && c->hdr[0] != 'C' && c->hdr[0] != 'S') return -1;
    c->mode = (char)c->hdr[0];
    for (int i = 0; i < 8; i++) c->n |= (uint64_t)c->hdr[8 + i] << (8 * i);
  }
  return absorb(c, scratch + off, (size_t)n - off);
}

static int target_write(int fd, struct conn *c) {
  const char *p;
  size_t len;
  if (c->mode == 'S') {
    p = zeros;
    len = c->n - c->sent < IO_CHUNK ? (size_t)(c->n - c->sent) : IO_CHUNK;
  } else {
    p = c->buf + c->buf_off;
    len = c->buf_len - c->buf_off;
  }
  if (len == 0) return 0;
  ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  if (c->mode == 'S') {
    c->sent += (uint64_t)n;
  } else {
    c->sent += (uint64_t)n;
    c->buf_off += (size_t)n;
    if (c->buf_off == c->buf_len) {
      free(c->buf);
      c->buf = NULL;
      c->buf_len = c->buf_off = 0;
    }
  }
  return 0;
}

/* Decides what to wait for next; returns 1 when the connection is finished. */
static int target_settle(int fd, struct conn *c) {
  int pending_out = c->mode == 'S' ? c->sent < c->n : c->buf_len > c->buf_off;
  if (c->eof && !pending_out) return 1;
  if (c->mode == 'S' && c->sent == c->n && c->received >= c->n) return 1;
  if (c->mode == 'C' && c->sent >= c->n) return 1;
  uint32_t events = 0;
  if (!c->eof && !(c->mode != 'S' && c->buf_len == IO_CHUNK)) events |= EPOLLIN;
  if (pending_out) events |= EPOLLOUT;
  watch(fd, events, EPOLL_CTL_MOD);
  return 0;
}

static int run_target(void) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof addr;
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) die("listen");
  if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) die("getsockname");
  conns_cap = 1 << 20;
  conns = calloc(conns_cap, sizeof *conns);
  epfd = epoll_create1(0);
  if (conns == NULL || epfd < 0) die("setup");
  watch(lfd, EPOLLIN, EPOLL_CTL_ADD);
  watch(0, EPOLLIN, EPOLL_CTL_ADD);
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  struct epoll_event events[256];
  for (;;) {
    int ready = epoll_wait(epfd, events, 256, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < ready; i++) {
      int fd = events[i].data.fd;
      if (fd == 0) return 0; /* stdin closed or readable: the bench is done */
      if (fd == lfd) {
        for (;;) {
          int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) break;
          if ((size_t)cfd >= conns_cap || (conns[cfd] = calloc(1, sizeof(struct conn))) == NULL) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          watch(cfd, EPOLLIN, EPOLL_CTL_ADD);
        }
        continue;
      }
      struct conn *c = conns[fd];
      if (c == NULL) continue;
      int bad = 0;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) bad = target_read(fd, c) < 0;
      if (!bad && (events[i].events & EPOLLOUT)) bad = target_write(fd, c) < 0;
      if (bad || target_settle(fd, c)) drop(fd);
    }
  }
}

/* ---- bulk ------------------------------------------------------------ */

struct stream {
  int fd;
  uint64_t bytes, received;
  int ok;
};

static pthread_barrier_t start_barrier;


static void *bulk_writer(void *arg) {
  struct stream *s = arg;
  static const char payload[IO_CHUNK];
  unsigned char hdr[HEADER_LEN];
  make_header(hdr, 'S', s->bytes);
  if (write_all(s->fd, hdr, HEADER_LEN) < 0) return NULL;
  for (uint64_t left = s->bytes; left > 0;) {
    size_t len = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
    if (write_all(s->fd, payload, len) < 0) return NULL;
    left -= len;
  }
  return NULL;
}

static void *bulk_stream(void *arg) {
  struct stream *s = arg;
  char *buf = malloc(IO_CHUNK);
  pthread_barrier_wait(&start_barrier);
  pthread_t writer;
  if (s->fd < 0 || buf == NULL || pthread_create(&writer, NULL, bulk_writer, s) != 0) {
    free(buf);
    return NULL;
  }
  for (;;) {
    ssize_t n = recv(s->fd, buf, IO_CHUNK, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      s->ok = n == 0 && s->received == s->bytes;
      break;
    }
    s->received += (uint64_t)n;
  }
  shutdown(s->fd, SHUT_RDWR);
  pthread_join(writer, NULL);
  free(buf);
  return NULL;
}

static int run_bulk(int streams, uint64_t total) {
  struct stream *ss = calloc((size_t)streams, sizeof *ss);
  pthread_t *threads = calloc((size_t)streams, sizeof *threads);
  if (ss == NULL || threads == NULL) die("calloc");
  pthread_barrier_init(&start_barrier, NULL, (unsigned)streams + 1);
  for (int i = 0; i < streams; i++) {
    ss[i].bytes = total / (uint64_t)streams + (i == 0 ? total % (uint64_t)streams : 0);
    ss[i].fd = open_session(0);
    if (pthread_create(&threads[i], NULL, bulk_stream, &ss[i]) != 0) die("pthread_create");
  }
  pthread_barrier_wait(&start_barrier);
  double started = now_s();
  int failed = 0;
  for (int i = 0; i < streams; i++) {
    pthread_join(threads[i], NULL);
    if (!ss[i].ok) failed++;
    if (ss[i].fd >= 0) close(ss[i].fd);
  }
  double seconds = now_s() - started;
  printf("{\"seconds\":%.6f,\"bytes_each_way\":%llu,\"streams\":%d,\"failed_streams\":%d}\n", seconds,
         (unsigned long long)total, streams, failed);
  return failed == 0 ? 0 : 1;
}

/* ---- rate ------------------------------------------------------------ */

static atomic_long rate_done, rate_errors, rate_budget;
static double rate_deadline;

static int one_echo_session(void) {
  int fd = open_session(1);
  if (fd < 0) return -1;
  unsigned char msg[HEADER_LEN + ECHO_LEN], back[ECHO_LEN + 1];
  make_header(msg, 'C', ECHO_LEN);
  memset(msg + HEADER_LEN, 'x', ECHO_LEN);
  int rc = write_all(fd, msg, sizeof msg) < 0 || read_exact(fd, back, ECHO_LEN) < 0 ? -1 : 0;
  if (rc == 0 && recv(fd, back, 1, 0) != 0) rc = -1; /* the target closes first */
  close(fd);
  return rc;
}

static void *rate_worker(void *arg) {
  (void)arg;
  while (now_s() < rate_deadline && atomic_fetch_sub(&rate_budget, 1) > 0) {
    if (one_echo_session() == 0) atomic_fetch_add(&rate_done, 1);
    else atomic_fetch_add(&rate_errors, 1);
  }
  return NULL;
}

static int run_rate(int concurrency, double seconds, long max) {
  pthread_t *threads = calloc((size_t)concurrency, sizeof *threads);
  if (threads == NULL) die("calloc");
  atomic_store(&rate_budget, max);
  double started = now_s();
  rate_deadline = started + seconds;
  for (int i = 0; i < concurrency; i++)
    if (pthread_create(&threads[i], NULL, rate_worker, NULL) != 0) die("pthread_create");
  for (int i = 0; i < concurrency; i++) pthread_join(threads[i], NULL);
  double elapsed = now_s() - started;
  printf("{\"connections\":%ld,\"errors\":%ld,\"seconds\":%.6f}\n", atomic_load(&rate_done),
         atomic_load(&rate_errors), elapsed);
  return atomic_load(&rate_done) > 0 ? 0 : 1;
}

/* ---- latency --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int run_latency(long count, double seconds) {
  int fd = open_session(1);
  if (fd < 0) die("open session");
  unsigned char hdr[HEADER_LEN], ping[PING_LEN], back[PING_LEN];
  make_header(hdr, 'E', 0);
  memset(ping, 'p', sizeof ping);
  if (write_all(fd, hdr, HEADER_LEN) < 0) die("send header");
  double *rtt = calloc((size_t)count, sizeof *rtt);
  if (rtt == NULL) die("calloc");
  double deadline = now_s() + seconds;
  long done = 0;
  for (long i = 0; i < count && now_s() < deadline; i++) {
    double t0 = now_s();
    if (write_all(fd, ping, PING_LEN) < 0 || read_exact(fd, back, PING_LEN) < 0) die("echo");
    rtt[done++] = (now_s() - t0) * 1e6;
  }
  close(fd);
  if (done == 0) return 1;
  qsort(rtt, (size_t)done, sizeof *rtt, cmp_double);
  printf("{\"count\":%ld,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", done, rtt[done / 2], rtt[(done * 99) / 100]);
  return 0;
}

/* ---- hold ------------------------------------------------------------ */

#define HOLD_THREADS 8

static int *held;
static long hold_count;
static atomic_long hold_next, hold_failed;
static double hold_deadline;

static void *hold_worker(void *arg) {
  (void)arg;
  unsigned char msg[HEADER_LEN + 1], back[1];
  make_header(msg, 'C', 2); /* one byte now, one at release */
  msg[HEADER_LEN] = 'h';
  for (;;) {
    long i = atomic_fetch_add(&hold_next, 1);
    if (i >= hold_count || now_s() > hold_deadline) break;
    int fd = open_session(1);
    if (fd >= 0 && (write_all(fd, msg, sizeof msg) < 0 || read_exact(fd, back, 1) < 0)) {
      close(fd);
      fd = -1;
    }
    if (fd < 0 && atomic_fetch_add(&hold_failed, 1) < 10)
      fprintf(stderr, "loadgen: session %ld of %ld failed: %s\n", i + 1, hold_count, strerror(errno));
    held[i] = fd;
  }
  return NULL;
}

static int run_hold(long count, double seconds) {
  hold_count = count;
  held = malloc((size_t)count * sizeof *held);
  if (held == NULL) die("malloc");
  for (long i = 0; i < count; i++) held[i] = -1;
  hold_deadline = now_s() + seconds;
  pthread_t threads[HOLD_THREADS];
  for (int i = 0; i < HOLD_THREADS; i++)
    if (pthread_create(&threads[i], NULL, hold_worker, NULL) != 0) die("pthread_create");
  for (int i = 0; i < HOLD_THREADS; i++) pthread_join(threads[i], NULL);
  long opened = 0;
  for (long i = 0; i < count; i++) opened += held[i] >= 0;
  printf("ready %ld %ld\n", opened, count - opened);
  fflush(stdout);
  double left = hold_deadline - now_s();
  struct pollfd in = {.fd = 0, .events = POLLIN};
  poll(&in, 1, left > 0 ? (int)(left * 1000) : 0);
  /* The second byte makes the target echo it and close; close after its FIN. */
  for (long i = 0; i < count; i++)
    if (held[i] >= 0) send(held[i], "q", 1, MSG_NOSIGNAL);
  for (long i = 0; i < count; i++) {
    if (held[i] < 0) continue;
    char buf[8];
    while (recv(held[i], buf, sizeof buf, 0) > 0) {
    }
    close(held[i]);
  }
  return 0;
}

/* ---- guess ----------------------------------------------------------- */

#define SLOW_REFUSAL_S 0.5

static atomic_long guess_attempts, guess_slow, guess_fast, guess_other, guess_errors, guess_next_source;
static atomic_int guess_stop;
static double guess_deadline;
static char guess_spread[8];

/* The source address of a thread's next guess (host byte order). */
static uint32_t guess_source(long thread) {
  if (strcmp(guess_spread, "one") == 0) return (127u << 24) | (100u << 16) | 1u;
  if (strcmp(guess_spread, "each") == 0) return (127u << 24) | (100u << 16) | (uint32_t)(thread + 1);
  /* "new": 127.101.0.1 upwards, skipping .0 and .255 host bytes. */
  long n = atomic_fetch_add(&guess_next_source, 1);
  uint32_t block = (uint32_t)(n / 254), host = (uint32_t)(n % 254) + 1;
  return (127u << 24) | ((101u + block / 256) << 16) | ((block % 256) << 8) | host;
}

/* One guess; returns 0 when it was refused with 05 02 01 01 and a close. */
static int guess_once(long thread, long attempt, double *seconds) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(guess_source(thread))};
  if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) {
    close(fd);
    return -1;
  }
  double t0 = now_s();
  if (connect(fd, (const struct sockaddr *)&proxy_addr, sizeof proxy_addr) < 0) {
    close(fd);
    return -1;
  }
  unsigned char msg[3 + 1 + 1 + 255 + 1 + 64];
  char password[64];
  int plen = snprintf(password, sizeof password, "guess-%ld-%ld", thread, attempt);
  size_t len = 0;
  msg[len++] = 5, msg[len++] = 1, msg[len++] = 2;
  msg[len++] = 1, msg[len++] = (unsigned char)auth_user_len;
  memcpy(msg + len, auth_user, auth_user_len), len += auth_user_len;
  msg[len++] = (unsigned char)plen;
  memcpy(msg + len, password, (size_t)plen), len += (size_t)plen;
  unsigned char reply[16];
  size_t got = 0;
  int rc = write_all(fd, msg, len) < 0 ? -1 : 0;
  while (rc == 0 && got < sizeof reply) {
    ssize_t n = recv(fd, reply + got, sizeof reply - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  *seconds = now_s() - t0;
  close(fd);
  if (rc < 0) return -1;
  static const unsigned char refused[4] = {5, 2, 1, 1};
  return got == 4 && memcmp(reply, refused, 4) == 0 ? 0 : 1;
}

static void *guess_worker(void *arg) {
  long thread = (long)(intptr_t)arg;
  for (long attempt = 0; !atomic_load(&guess_stop) && now_s() < guess_deadline; attempt++) {
    double seconds = 0;
    int rc = guess_once(thread, attempt, &seconds);
    atomic_fetch_add(&guess_attempts, 1);
    if (rc < 0) {
      atomic_fetch_add(&guess_errors, 1);
      usleep(10000); /* no tight loop on a refused connect */
    } else if (rc > 0) atomic_fetch_add(&guess_other, 1);
    else if (seconds >= SLOW_REFUSAL_S) atomic_fetch_add(&guess_slow, 1);
    else atomic_fetch_add(&guess_fast, 1);
  }
  return NULL;
}

static int run_guess(int clients, double seconds, const char *spread, long first) {
  if (auth_user_len == 0) {
    fprintf(stderr, "loadgen: guess needs LOADGEN_AUTH=USER:PASSWORD (the user whose password is guessed)\n");
    return 2;
  }
  if (strcmp(spread, "one") != 0 && strcmp(spread, "each") != 0 && strcmp(spread, "new") != 0) {
    fprintf(stderr, "loadgen: guess SPREAD must be one, each or new, not %s\n", spread);
    return 2;
  }
  snprintf(guess_spread, sizeof guess_spread, "%s", spread);
  atomic_store(&guess_next_source, first);
  pthread_t *threads = calloc((size_t)clients, sizeof *threads);
  if (threads == NULL) die("calloc");
  double started = now_s();
  guess_deadline = started + seconds;
  for (long i = 0; i < clients; i++)
    if (pthread_create(&threads[i], NULL, guess_worker, (void *)(intptr_t)i) != 0) die("pthread_create");
  printf("ready\n");
  fflush(stdout);
  struct pollfd in = {.fd = 0, .events = POLLIN};
  poll(&in, 1, (int)(seconds * 1000));
  atomic_store(&guess_stop, 1);
  for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
  printf("{\"attempts\":%ld,\"slow\":%ld,\"fast\":%ld,\"other\":%ld,\"errors\":%ld,\"seconds\":%.6f}\n",
         atomic_load(&guess_attempts), atomic_load(&guess_slow), atomic_load(&guess_fast), atomic_load(&guess_other),
         atomic_load(&guess_errors), now_s() - started);
  return 0;
}

/* Reads LOADGEN_AUTH=USER:PASSWORD into the RFC 1929 request. */
static void read_auth(void) {
  const char *auth = getenv("LOADGEN_AUTH");
  if (auth == NULL || *auth == 0) return;
  const char *colon = strchr(auth, ':');
  size_t ulen = colon == NULL ? 0 : (size_t)(colon - auth), plen = colon == NULL ? 0 : strlen(colon + 1);
  if (ulen == 0 || ulen > 255 || plen == 0 || plen > 255) {
    fprintf(stderr, "loadgen: LOADGEN_AUTH must be USER:PASSWORD, each 1 to 255 bytes\n");
    exit(2);
  }
  memcpy(auth_user, auth, ulen);
  auth_user_len = ulen;
  auth_request[0] = 1;
  auth_request[1] = (unsigned char)ulen;
  memcpy(auth_request + 2, auth, ulen);
  auth_request[2 + ulen] = (unsigned char)plen;
  memcpy(auth_request + 3 + ulen, colon + 1, plen);
  auth_len = 3 + ulen + plen;
}

/* Reads LOADGEN_PROXY_HEADER (v1, v2, or unset). */
static void read_proxy_header(void) {
  const char *version = getenv("LOADGEN_PROXY_HEADER");
  if (version == NULL || *version == 0) return;
  if (strcmp(version, "v1") != 0 && strcmp(version, "v2") != 0) {
    fprintf(stderr, "loadgen: LOADGEN_PROXY_HEADER must be v1 or v2, not %s\n", version);
    exit(2);
  }
  proxy_header_version = version[1] - '0';
}

/* ---- startup ----------------------------------------------------------- */

#define STARTUP_PATTERNS 4
#define STARTUP_OUTPUT (64 * 1024)

static int run_startup(double seconds, char *patterns, char **command) {
  const char *wanted[STARTUP_PATTERNS];
  double seen_ms[STARTUP_PATTERNS];
  int count = 0;
  for (char *save = NULL, *p = strtok_r(patterns, "|", &save); p != NULL && count < STARTUP_PATTERNS;
       p = strtok_r(NULL, "|", &save)) {
    seen_ms[count] = -1;
    wanted[count++] = p;
  }
  if (count == 0) {
    fprintf(stderr, "loadgen: startup needs at least one pattern\n");
    return 2;
  }
  int out[2];
  if (pipe(out) < 0) die("pipe");
  double started = now_s();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    setpgid(0, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_DFL);
    execvp(command[0], command);
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]);
  static char output[STARTUP_OUTPUT + 1];
  size_t length = 0;
  int missing = count, eof = 0;
  double deadline = started + seconds;
  while (missing > 0 && !eof) {
    double left = deadline - now_s();
    if (left <= 0) break;
    struct pollfd pfd = {out[0], POLLIN, 0};
    int ready = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = read(out[0], output + length, STARTUP_OUTPUT - length);
    double at = now_s();
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = 1;
      break;
    }
    length += (size_t)n;
    output[length] = 0;
    for (int i = 0; i < count; i++) {
      if (seen_ms[i] < 0 && strstr(output, wanted[i]) != NULL) {
        seen_ms[i] = (at - started) * 1000;
        missing--;
      }
    }
    if (length == STARTUP_OUTPUT) eof = 1;
  }
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(out[0]);
  if (missing > 0) {
    fprintf(stderr, "loadgen: %s %s before printing every pattern; it printed:\n%s\n", command[0],
            eof ? "stopped" : "timed out", output);
    return 1;
  }
  printf("{\"ms\":[");
  for (int i = 0; i < count; i++) printf("%s%.3f", i == 0 ? "" : ",", seen_ms[i]);
  printf("]}\n");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  read_auth();
  read_proxy_header();
  if (argc >= 2 && strcmp(argv[1], "target") == 0) return run_target();
  if (argc >= 5 && strcmp(argv[1], "startup") == 0) return run_startup(atof(argv[2]), argv[3], argv + 4);
  if (argc < 4) {
    fprintf(stderr, "usage: loadgen target | bulk|rate|latency|hold|guess PROXY|- TARGET ...\n");
    return 2;
  }
  direct = strcmp(argv[2], "-") == 0;
  if (!direct) parse_addr(argv[2], &proxy_addr);
  parse_addr(argv[3], &target_addr);
  if (strcmp(argv[1], "bulk") == 0 && argc == 6) return run_bulk(atoi(argv[4]), strtoull(argv[5], NULL, 10));
  if (strcmp(argv[1], "rate") == 0 && argc == 7) return run_rate(atoi(argv[4]), atof(argv[5]), atol(argv[6]));
  if (strcmp(argv[1], "latency") == 0 && argc == 6) return run_latency(atol(argv[4]), atof(argv[5]));
  if (strcmp(argv[1], "guess") == 0 && (argc == 7 || argc == 8) && !direct)
    return run_guess(atoi(argv[4]), atof(argv[5]), argv[6], argc == 8 ? atol(argv[7]) : 0);
  if (strcmp(argv[1], "hold") == 0 && argc == 6) return run_hold(atol(argv[4]), atof(argv[5]));
  fprintf(stderr, "loadgen: unknown command or wrong argument count: %s\n", argv[1]);
  return 2;
}

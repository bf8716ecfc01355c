/*
 * UDP load for the benchmark's udp section (scripts/bench/udp_section.ts):
 * an echo target and a SOCKS5 UDP ASSOCIATE client. IPv4 on loopback only.
 *
 *   udpgen echo
 *       Binds UDP on 127.0.0.1 (ephemeral port), prints "port N", and sends
 *       every datagram back to where it came from until its stdin closes.
 *       One thread.
 *   udpgen run PROXY TARGET COUNT WINDOW SECONDS SIZE
 *       Opens a SOCKS5 session (no authentication) to PROXY, asks for UDP
 *       ASSOCIATE declaring its own UDP address, and sends COUNT datagrams
 *       of SIZE payload bytes (at least 8: a sequence number) to TARGET
 *       through the relay address of the reply, each with the SOCKS5 UDP
 *       header, keeping WINDOW in flight, for at most SECONDS. PROXY "-"
 *       sends the bare payloads to TARGET directly. A datagram with no reply
 *       within LOSS_TIMEOUT_S is counted lost and its slot refilled; a reply
 *       that comes later counts as late, not as received. Prints one JSON
 *       object: sent, received, lost, late, bad (replies that are not an
 *       echo of a datagram sent), seconds (first send to last reply),
 *       p50_us and p99_us (round trips of the received datagrams).
 *   udpgen probe PROXY
 *       Asks PROXY for UDP ASSOCIATE and prints {"rep":N}: the reply code
 *       (0 granted, 7 command not supported, ...), or -1 when the server
 *       closed or stayed silent instead of replying.
 *
 * Every blocking step has a 10 s timeout and every loop ends by count or
 * time, so nothing waits forever.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 10
#define LOSS_TIMEOUT_S 0.25
#define MAX_COUNT 2000000
#define MAX_WINDOW 1024
#define MAX_SIZE 1400
#define UDP_HEADER_LEN 10

enum { UNSENT, IN_FLIGHT, RECEIVED, LOST };

#define PROGRAM "udpgen"
#include "bench_io.h"

static void set_timeouts(int fd) {
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A UDP socket bound to 127.0.0.1, port 0; its address in `addr`. */
static int udp_socket(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0) die("bind");
  if (getsockname(fd, (struct sockaddr *)addr, &len) < 0) die("getsockname");
  return fd;
}

/*
 * SOCKS5 greeting (no authentication) and UDP ASSOCIATE declaring `self` on
 * a new connection to `proxy`. Returns the reply code (or -1 when there was
 * none); on 0, `relay` holds the relay address (the proxy's address when
 * the reply names 0.0.0.0) and `*control` the open connection.
 */
static int associate(const struct sockaddr_in *proxy, const struct sockaddr_in *self, struct sockaddr_in *relay,
                     int *control) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  set_timeouts(fd);
  if (connect(fd, (const struct sockaddr *)proxy, sizeof *proxy) < 0) die("connect to the proxy");
  unsigned char greeting[3] = {5, 1, 0}, choice[2];
  if (write_all(fd, greeting, 3) < 0 || read_exact(fd, choice, 2) < 0 || choice[0] != 5 || choice[1] != 0) {
    close(fd);
    return -1;
  }
  unsigned char req[10] = {5, 3, 0, 1}, rep[22];
  memcpy(req + 4, &self->sin_addr, 4);
  memcpy(req + 8, &self->sin_port, 2);
  if (write_all(fd, req, sizeof req) < 0 || read_exact(fd, rep, 4) < 0 || rep[0] != 5) {
    close(fd);
    return -1;
  }
  if (rep[1] != 0) {
    close(fd);
    return rep[1];
  }
  if (rep[3] != 1 || read_exact(fd, rep + 4, 6) < 0) {
    fprintf(stderr, "udpgen: the UDP ASSOCIATE reply does not name an IPv4 relay address (ATYP %d)\n", rep[3]);
    exit(2);
  }
  memset(relay, 0, sizeof *relay);
  relay->sin_family = AF_INET;
  memcpy(&relay->sin_addr, rep + 4, 4);
  memcpy(&relay->sin_port, rep + 8, 2);
  if (relay->sin_addr.s_addr == htonl(INADDR_ANY)) relay->sin_addr = proxy->sin_addr;
  *control = fd;
  return 0;
}

/* ---- echo ------------------------------------------------------------ */

static int run_echo(void) {
  struct sockaddr_in addr;
  int fd = udp_socket(&addr);
  int buf = 4 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  char data[65536];
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[1].revents != 0) return 0; /* stdin closed or readable: the bench is done */
    for (int i = 0; i < 256; i++) {
      struct sockaddr_in from;
      socklen_t from_len = sizeof from;
      ssize_t n = recvfrom(fd, data, sizeof data, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
      if (n < 0) break;
      sendto(fd, data, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from, from_len);
    }
  }
}

/* ---- run ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The payload offset of a datagram from the relay, or -1 when it is not a whole SOCKS5 UDP header. */
static ssize_t payload_offset(const unsigned char *p, ssize_t n) {
  if (n < 4 || p[0] != 0 || p[1] != 0 || p[2] != 0) return -1;
  ssize_t off = p[3] == 1 ? 10 : p[3] == 4 ? 22 : p[3] == 3 && n > 4 ? 7 + p[4] : -1;
  return off > n ? -1 : off;
}

static int run_run(const char *proxy_text, const char *target_text, long count, int window, double seconds,
                   int size) {
  if (count < 1 || count > MAX_COUNT || window < 1 || window > MAX_WINDOW || seconds <= 0 || size < 8 ||
      size > MAX_SIZE) {
    fprintf(stderr, "udpgen: run needs 1 <= COUNT <= %d, 1 <= WINDOW <= %d, SECONDS > 0, 8 <= SIZE <= %d\n",
            MAX_COUNT, MAX_WINDOW, MAX_SIZE);
    return 2;
  }
  int direct = strcmp(proxy_text, "-") == 0;
  struct sockaddr_in proxy, target, self, relay;
  parse_addr(target_text, &target);
  int fd = udp_socket(&self), control = -1;
  set_timeouts(fd);
  if (direct) relay = target;
  else {
    parse_addr(proxy_text, &proxy);
    int rep = associate(&proxy, &self, &relay, &control);
    if (rep != 0) {
      fprintf(stderr, "udpgen: %s refused UDP ASSOCIATE: %s %d\n", proxy_text, rep < 0 ? "no reply" : "REP", rep);
      return 3;
    }
  }
  unsigned char *state = calloc((size_t)count, 1);
  double *sent_at = calloc((size_t)count, sizeof *sent_at), *rtt = calloc((size_t)count, sizeof *rtt);
  if (state == NULL || sent_at == NULL || rtt == NULL) die("calloc");
  unsigned char out[UDP_HEADER_LEN + MAX_SIZE], in[2048];
  size_t header = direct ? 0 : UDP_HEADER_LEN;
  memset(out, 'u', sizeof out);
  if (!direct) {
    memset(out, 0, UDP_HEADER_LEN);
    out[3] = 1;
    memcpy(out + 4, &target.sin_addr, 4);
    memcpy(out + 8, &target.sin_port, 2);
  }
  long next = 0, oldest = 0, received = 0, lost = 0, late = 0, bad = 0;
  int in_flight = 0;
  double started = now_s(), deadline = started + seconds, last_reply = started;
  for (;;) {
    double now = now_s();
    int sending = next < count && now < deadline;
    while (sending && in_flight < window && next < count) {
      uint64_t seq = (uint64_t)next;
      memcpy(out + header, &seq, 8);
      sent_at[next] = now_s();
      ssize_t n = sendto(fd, out, header + (size_t)size, 0, (struct sockaddr *)&relay, sizeof relay);
      if (n < 0) {
        state[next++] = LOST; /* the kernel refused it: nothing will come back */
        lost++;
        continue;
      }
      state[next++] = IN_FLIGHT;
      in_flight++;
    }
    now = now_s();
    while (oldest < next && (state[oldest] != IN_FLIGHT || now - sent_at[oldest] > LOSS_TIMEOUT_S)) {
      if (state[oldest] == IN_FLIGHT) {
        state[oldest] = LOST;
        lost++;
        in_flight--;
      }
      oldest++;
    }
    if (in_flight == 0 && !(next < count && now < deadline)) break;
    int wait_ms = oldest < next ? (int)((sent_at[oldest] + LOSS_TIMEOUT_S - now) * 1000) + 1 : 1;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, wait_ms < 1 ? 1 : wait_ms) <= 0) continue;
    for (int i = 0; i < 256; i++) {
      ssize_t n = recv(fd, in, sizeof in, MSG_DONTWAIT);
      if (n < 0) break;
      double at = now_s();
      ssize_t off = direct ? 0 : payload_offset(in, n);
      uint64_t seq;
      if (off < 0 || n - off != size || (memcpy(&seq, in + off, 8), seq >= (uint64_t)next)) {
        bad++;
        continue;
      }
      if (state[seq] == IN_FLIGHT) {
        state[seq] = RECEIVED;
        rtt[received++] = (at - sent_at[seq]) * 1e6;
        in_flight--;
        last_reply = at;
      } else if (state[seq] == LOST) late++;
      else bad++;
    }
  }
  if (control >= 0) close(control);
  close(fd);
  qsort(rtt, (size_t)received, sizeof *rtt, cmp_double);
  double p50 = received > 0 ? rtt[received / 2] : 0, p99 = received > 0 ? rtt[(received * 99) / 100] : 0;
  printf("{\"sent\":%ld,\"received\":%ld,\"lost\":%ld,\"late\":%ld,\"bad\":%ld,\"seconds\":%.6f,\"p50_us\":%.2f,"
         "\"p99_us\":%.2f}\n",
         next, received, lost, late, bad, last_reply - started, p50, p99);
  return received > 0 ? 0 : 1;
}

/* ---- probe ----------------------------------------------------------- */

static int run_probe(const char *proxy_text) {
  struct sockaddr_in proxy, self, relay;
  parse_addr(proxy_text, &proxy);
  int fd = udp_socket(&self), control = -1;
  int rep = associate(&proxy, &self, &relay, &control);
  if (control >= 0) close(control);
  close(fd);
  printf("{\"rep\":%d}\n", rep);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "echo") == 0) return run_echo();
  if (argc == 3 && strcmp(argv[1], "probe") == 0) return run_probe(argv[2]);
  if (argc == 8 && strcmp(argv[1], "run") == 0)
    return run_run(argv[2], argv[3], atol(argv[4]), atoi(argv[5]), atof(argv[6]), atoi(argv[7]));
  fprintf(stderr, "usage: udpgen echo | run PROXY|- TARGET COUNT WINDOW SECONDS SIZE | probe PROXY\n");
  return 2;
}

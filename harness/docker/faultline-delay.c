/*
 * faultline-delay: holds real packets for a while before letting them go, for the `delay` fault package
 * on kernels without tc netem. An iptables rule in the container's OUTPUT chain sends the packets bound
 * for chosen peers to NFQUEUE (with --queue-bypass, so they pass untouched when this program is gone);
 * this program reads each packet's destination address, looks up that link's delay, jitter and
 * duplication, and gives its ACCEPT verdict only once the packet's release time has come. Verdicts are
 * given out of order (the kernel allows it), so jitter really reorders packets. A duplicate is a copy of
 * the packet sent again through a raw socket with a mark that the iptables rule excludes, so it is not
 * queued (and delayed, and duplicated) again.
 *
 * Usage: faultline-delay --queue N --config FILE --stats FILE
 *   The config file has one line per delayed link: "<destination IPv4> <delay µs> <jitter µs> <duplicate ‰>".
 *   SIGHUP re-reads it (held packets keep the release time they were given). SIGTERM or SIGINT releases
 *   every held packet at once, writes the stats and exits 0. The stats file (JSON, rewritten every
 *   200 ms and at exit) counts packets, reorders (a packet released after one that arrived later on its
 *   link), duplicates and the process's own CPU time, so the harness can prove and price the fault.
 *
 * One thread: a ppoll loop on the netlink socket whose timeout is the earliest release time, and a binary
 * heap of held packets ordered by release time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DUP_MARK 0xfa17
#define MAX_DELAYED_LINKS 64

struct link {
  uint32_t ip; /* network order */
  int64_t delay_us, jitter_us;
  int dup_permille;
  uint64_t packets, reordered, duplicated, dup_errors;
  uint64_t next_seq;     /* arrival order on this link */
  uint64_t max_released; /* highest arrival seq released so far, +1 (0: none) */
  int64_t max_delay_us;  /* the longest a packet of this link was held */
};

struct held {
  int64_t release_us;
  uint32_t id;
  int link;         /* index in links, or -1 */
  uint64_t seq;     /* arrival order on its link */
  unsigned char *copy; /* the packet, when it is to be duplicated */
  int copy_len;
  int64_t arrived_us;
};

static struct link links[MAX_DELAYED_LINKS];
static int nlinks;
static struct held *heap;
static size_t heap_len, heap_cap, max_held;
static uint64_t total_packets, unmatched, verdict_errors, held_total;
static struct nfq_q_handle *qh;
static int raw_fd = -1;
static const char *config_path, *stats_path;
static volatile sig_atomic_t want_reload, want_exit;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rnd(void) { /* xorshift64*: fast, and good enough for jitter and duplication draws */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void heap_swap(size_t a, size_t b) {
  struct held t = heap[a];
  heap[a] = heap[b];
  heap[b] = t;
}

static int heap_less(size_t a, size_t b) {
  return heap[a].release_us < heap[b].release_us || (heap[a].release_us == heap[b].release_us && heap[a].id < heap[b].id);
}

static int heap_push(struct held h) {
  if (heap_len == heap_cap) {
    size_t cap = heap_cap ? heap_cap * 2 : 1024;
    struct held *next = realloc(heap, cap * sizeof *heap);
    if (!next) return -1;
    heap = next;
    heap_cap = cap;
  }
  size_t i = heap_len++;
  heap[i] = h;
  while (i > 0 && heap_less(i, (i - 1) / 2)) {
    heap_swap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  if (heap_len > max_held) max_held = heap_len;
  return 0;
}

static struct held heap_pop(void) {
  struct held top = heap[0];
  heap[0] = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_len && heap_less(l, m)) m = l;
    if (r < heap_len && heap_less(r, m)) m = r;
    if (m == i) break;
    heap_swap(i, m);
    i = m;
  }
  return top;
}

static int find_link(uint32_t ip) {
  for (int i = 0; i < nlinks; i++)
    if (links[i].ip == ip) return i;
  return -1;
}

/* Reads the config file; the counters of a link that stays are kept. Returns 0, or -1 with a message. */
static int load_config(void) {
  FILE *f = fopen(config_path, "r");
  if (!f) {
    fprintf(stderr, "faultline-delay: cannot open %s: %s\n", config_path, strerror(errno));
    return -1;
  }
  struct link next[MAX_DELAYED_LINKS];
  int n = 0;
  char ipText[64];
  long long delay, jitter;
  int dup;
  int got;
  while ((got = fscanf(f, "%63s %lld %lld %d", ipText, &delay, &jitter, &dup)) == 4) {
    struct in_addr a;
    if (n == MAX_DELAYED_LINKS || inet_pton(AF_INET, ipText, &a) != 1 || delay < 0 || jitter < 0 || jitter > delay || dup < 0 || dup > 1000) {
      fprintf(stderr, "faultline-delay: %s: bad line \"%s %lld %lld %d\" (expected: IPv4 delay-µs jitter-µs (at most the delay) duplicate-‰ 0-1000, at most %d lines)\n", config_path, ipText, delay, jitter, dup, MAX_DELAYED_LINKS);
      fclose(f);
      return -1;
    }
    int old = find_link(a.s_addr);
    next[n] = old >= 0 ? links[old] : (struct link){.ip = a.s_addr};
    next[n].delay_us = delay;
    next[n].jitter_us = jitter;
    next[n].dup_permille = dup;
    n++;
  }
  int bad = got != EOF;
  fclose(f);
  if (bad) {
    fprintf(stderr, "faultline-delay: %s: a line is not \"<IPv4> <delay µs> <jitter µs> <duplicate ‰>\"\n", config_path);
    return -1;
  }
  /* Held packets name links by index; re-point them at the new table (a link that went is released at its time). */
  for (size_t i = 0; i < heap_len; i++) {
    if (heap[i].link < 0) continue;
    uint32_t ip = links[heap[i].link].ip;
    int j = -1;
    for (int k = 0; k < n; k++)
      if (next[k].ip == ip) j = k;
    heap[i].link = j;
  }
  memcpy(links, next, sizeof next);
  nlinks = n;
  return 0;
}

static int any_duplication(void) {
  for (int i = 0; i < nlinks; i++)
    if (links[i].dup_permille > 0) return 1;
  return 0;
}

static void write_stats(int final) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t reordered = 0, duplicated = 0, dup_errors = 0;
  for (int i = 0; i < nlinks; i++) {
    reordered += links[i].reordered;
    duplicated += links[i].duplicated;
    dup_errors += links[i].dup_errors;
  }
  fprintf(f, "{\"pid\":%d,\"final\":%s,\"packets\":%llu,\"unmatched\":%llu,\"held\":%zu,\"maxHeld\":%zu,\"reordered\":%llu,\"duplicated\":%llu,\"duplicateErrors\":%llu,\"verdictErrors\":%llu,"
             "\"cpuUserUs\":%lld,\"cpuSysUs\":%lld,\"links\":[",
          (int)getpid(), final ? "true" : "false", (unsigned long long)total_packets, (unsigned long long)unmatched, heap_len, max_held, (unsigned long long)reordered,
          (unsigned long long)duplicated, (unsigned long long)dup_errors, (unsigned long long)verdict_errors, (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
          (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  for (int i = 0; i < nlinks; i++) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &links[i].ip, ip, sizeof ip);
    fprintf(f, "%s{\"ip\":\"%s\",\"delayUs\":%lld,\"jitterUs\":%lld,\"duplicatePermille\":%d,\"packets\":%llu,\"reordered\":%llu,\"duplicated\":%llu,\"duplicateErrors\":%llu,\"maxDelayUs\":%lld}",
            i ? "," : "", ip, (long long)links[i].delay_us, (long long)links[i].jitter_us, links[i].dup_permille, (unsigned long long)links[i].packets,
            (unsigned long long)links[i].reordered, (unsigned long long)links[i].duplicated, (unsigned long long)links[i].dup_errors, (long long)links[i].max_delay_us);
  }
  fprintf(f, "]}\n");
  fclose(f);
  rename(tmp, stats_path);
}

static void release(struct held *h, int64_t now) {
  if (nfq_set_verdict(qh, h->id, NF_ACCEPT, 0, NULL) < 0) verdict_errors++;
  if (h->link >= 0) {
    struct link *l = &links[h->link];
    if (h->seq + 1 < l->max_released) l->reordered++;
    if (h->seq + 1 > l->max_released) l->max_released = h->seq + 1;
    if (now - h->arrived_us > l->max_delay_us) l->max_delay_us = now - h->arrived_us;
    if (h->copy) {
      struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = l->ip};
      if (sendto(raw_fd, h->copy, h->copy_len, 0, (struct sockaddr *)&to, sizeof to) == h->copy_len) l->duplicated++;
      else l->dup_errors++;
    }
  }
  free(h->copy);
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  unsigned char *payload;
  int len = nfq_get_payload(nfa, &payload);
  total_packets++;
  int64_t now = now_us();
  int li = -1;
  if (len >= 20 && (payload[0] >> 4) == 4) {
    uint32_t dst;
    memcpy(&dst, payload + 16, 4);
    li = find_link(dst);
  }
  if (li < 0) {
    /* Not a link we delay (the rule and the config disagree for a moment during a change): let it go. */
    unmatched++;
    if (nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL) < 0) verdict_errors++;
    return 0;
  }
  struct link *l = &links[li];
  l->packets++;
  int64_t d = l->delay_us;
  if (l->jitter_us > 0) d += (int64_t)(rnd() % (uint64_t)(2 * l->jitter_us + 1)) - l->jitter_us;
  if (d < 0) d = 0;
  struct held h = {.release_us = now + d, .id = id, .link = li, .seq = l->next_seq++, .arrived_us = now};
  if (l->dup_permille > 0 && (int)(rnd() % 1000) < l->dup_permille && len > 0 && len <= 65535) {
    h.copy = malloc((size_t)len);
    if (h.copy) {
      memcpy(h.copy, payload, (size_t)len);
      h.copy_len = len;
    }
  }
  if (heap_push(h) < 0) {
    free(h.copy);
    if (nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL) < 0) verdict_errors++;
    return 0;
  }
  held_total++;
  return 0;
}

static void on_signal(int sig) {
  if (sig == SIGHUP) want_reload = 1;
  else want_exit = 1;
}

static void set_copy_mode(void) {
  /* Only a duplicate needs the whole packet; otherwise the IPv4 header is all that is read. */
  if (nfq_set_mode(qh, NFQNL_COPY_PACKET, any_duplication() ? 0xffff : 20) < 0) fprintf(stderr, "faultline-delay: nfq_set_mode failed: %s\n", strerror(errno));
}

int main(int argc, char **argv) {
  int queue = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--queue")) queue = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--config")) config_path = argv[i + 1];
    else if (!strcmp(argv[i], "--stats")) stats_path = argv[i + 1];
    else {
      fprintf(stderr, "faultline-delay: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (queue < 0 || queue > 65535 || !config_path || !stats_path || argc % 2 == 0) {
    fprintf(stderr, "usage: faultline-delay --queue 0-65535 --config FILE --stats FILE\n");
    return 2;
  }
  rng_state ^= (uint64_t)now_us() * 0x2545F4914F6CDD1DULL ^ (uint64_t)getpid();
  if (load_config() < 0) return 2;

  struct nfq_handle *h = nfq_open();
  if (!h) {
    fprintf(stderr, "faultline-delay: nfq_open failed: %s (needs CAP_NET_ADMIN and CONFIG_NETFILTER_NETLINK_QUEUE)\n", strerror(errno));
    return 1;
  }
  nfq_unbind_pf(h, AF_INET);
  if (nfq_bind_pf(h, AF_INET) < 0) {
    fprintf(stderr, "faultline-delay: nfq_bind_pf failed: %s\n", strerror(errno));
    return 1;
  }
  qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
  if (!qh) {
    fprintf(stderr, "faultline-delay: cannot bind queue %d: %s (is another faultline-delay running?)\n", queue, strerror(errno));
    return 1;
  }
  set_copy_mode();
  /* Held packets count against the queue's length: a 500 ms delay at 20k packets/s holds 10k. */
  if (nfq_set_queue_maxlen(qh, 65536) < 0) fprintf(stderr, "faultline-delay: nfq_set_queue_maxlen failed: %s\n", strerror(errno));
  int fd = nfq_fd(h);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 16 * 1024 * 1024);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (raw_fd >= 0) {
    int mark = DUP_MARK;
    if (setsockopt(raw_fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
      fprintf(stderr, "faultline-delay: SO_MARK on the raw socket failed: %s; duplicates are not sent\n", strerror(errno));
      close(raw_fd);
      raw_fd = -1;
    }
  } else {
    fprintf(stderr, "faultline-delay: raw socket failed: %s; duplicates are not sent\n", strerror(errno));
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  char buf[65536 + 4096] __attribute__((aligned));
  int64_t next_stats = 0;
  while (!want_exit) {
    if (want_reload) {
      want_reload = 0;
      if (load_config() == 0) set_copy_mode();
      next_stats = 0; /* the stats show the new links at once, which is how the harness reads the change back */
    }
    int64_t now = now_us();
    while (heap_len > 0 && heap[0].release_us <= now) {
      struct held top = heap_pop();
      release(&top, now);
    }
    if (now >= next_stats) {
      write_stats(0);
      next_stats = now + 200000;
    }
    int64_t wait = next_stats - now;
    if (heap_len > 0 && heap[0].release_us - now < wait) wait = heap[0].release_us - now;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    /* ppoll sleeps to the microsecond (poll would round the wait to milliseconds). */
    if (wait < 0) wait = 0;
    struct timespec timeout = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
    int rc = ppoll(&p, 1, &timeout, NULL);
    if (rc < 0 && errno != EINTR) {
      fprintf(stderr, "faultline-delay: poll failed: %s\n", strerror(errno));
      break;
    }
    if (rc > 0) {
      for (int i = 0; i < 256; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) break; /* EAGAIN: drained; ENOBUFS cannot happen with NETLINK_NO_ENOBUFS */
        nfq_handle_packet(h, buf, (int)n);
      }
    }
  }
  /* Leaving: every held packet goes now, so nothing waits for a program that is gone. */
  int64_t now = now_us();
  while (heap_len > 0) {
    struct held top = heap_pop();
    release(&top, now);
  }
  write_stats(1);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}

// The egress proxy's data plane (docs/sandbox.md, "Egress"): once the proxy has admitted a
// tunnel, its bytes move socket -> pipe -> socket by splice(2) in a thread of its own, so they
// are never copied into user space and never wait for the event loop. Policy stays in
// TypeScript (worker/egress/proxy.ts); this file only moves bytes, counts them against the job's
// byte budget (shared with every other tunnel of the job) and reports how the tunnel ended.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

// Bytes moved per splice: the pipe's capacity (docs/benchmarks.md, "Egress proxy": 256 KiB measured
// as well as 1 MiB and better than the 64 KiB default). Where the kernel refuses the size, the
// default pipe works, with more calls.
#define PIPE_BYTES (256 * 1024)

typedef enum { END_EOF = 0, END_LIMIT = 1, END_STOPPED = 2, END_ERROR = 3 } end_t;

typedef struct {
  int src, dst;
  int pipe_r, pipe_w;
  size_t in_pipe;  // spliced from src, not yet into dst
  bool eof;        // src ended (its pipe may still hold bytes)
  bool done;       // eof, pipe drained, dst shut for writing
  int64_t bytes;   // moved from src into the pipe
} dir_t;

// The stop() function's hold on the relay's eventfd: shared by the relay (until it reports its
// end, when the descriptor is closed) and the JS function (until it is collected); both owners
// are on the JS thread, so a plain count suffices. A stop() after the end writes nowhere.
typedef struct {
  int fd;
  int refs;
} stopper_t;

static void unref_stopper(stopper_t *s) {
  if (--s->refs == 0) free(s);
}

typedef struct {
  dir_t d[2];  // [0] client -> destination (up), [1] destination -> client (down)
  int stop_fd;
  stopper_t *stopper;
  int64_t *used;  // the job's bytes so far, shared by its tunnels (a SharedArrayBuffer)
  int64_t limit;
  napi_ref budget_ref;
  napi_threadsafe_function done_fn;
  end_t end;
  int err;
  pthread_t thread;
} relay_t;

// Takes up to `want` of the job's remaining bytes; 0 when none remain.
static int64_t reserve(relay_t *r, int64_t want) {
  int64_t cur = __atomic_load_n(r->used, __ATOMIC_SEQ_CST);
  for (;;) {
    int64_t left = r->limit - cur;
    if (left <= 0) return 0;
    int64_t take = want < left ? want : left;
    if (__atomic_compare_exchange_n(r->used, &cur, cur + take, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      return take;
  }
}

static void give_back(relay_t *r, int64_t n) {
  if (n > 0) __atomic_fetch_sub(r->used, n, __ATOMIC_SEQ_CST);
}

// One step of a direction; returns false when the tunnel must end (r->end says why).
static bool step(relay_t *r, dir_t *d, bool readable, bool writable) {
  if (d->in_pipe > 0 && writable) {
    ssize_t m = splice(d->pipe_r, NULL, d->dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) d->in_pipe -= (size_t)m;
    else if (m < 0 && errno != EAGAIN) return r->err = errno, r->end = END_ERROR, false;
  }
  if (d->in_pipe == 0 && !d->eof && readable) {
    int64_t take = reserve(r, PIPE_BYTES);
    if (take == 0) {
      // The budget is spent: an end of stream is still an end, any further byte is over it.
      char c;
      ssize_t p = recv(d->src, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (p == 0) d->eof = true;
      else if (p > 0) return r->end = END_LIMIT, false;
      else if (errno != EAGAIN) return r->err = errno, r->end = END_ERROR, false;
    } else {
      ssize_t n = splice(d->src, NULL, d->pipe_w, NULL, (size_t)take, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      give_back(r, take - (n > 0 ? n : 0));
      if (n > 0) {
        d->in_pipe = (size_t)n;
        d->bytes += n;
        // Usually the destination takes it at once: no poll round trip for the common case.
        ssize_t m = splice(d->pipe_r, NULL, d->dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (m > 0) d->in_pipe -= (size_t)m;
        else if (m < 0 && errno != EAGAIN) return r->err = errno, r->end = END_ERROR, false;
      } else if (n == 0) d->eof = true;
      else if (errno != EAGAIN) return r->err = errno, r->end = END_ERROR, false;
    }
  }
  if (d->eof && d->in_pipe == 0 && !d->done) {
    shutdown(d->dst, SHUT_WR);
    d->done = true;
  }
  return true;
}

static void *run(void *arg) {
  relay_t *r = arg;
  r->end = END_EOF;
  while (!(r->d[0].done && r->d[1].done)) {
    struct pollfd p[5];
    int n = 0;
    int rd[2] = {-1, -1}, wr[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
      dir_t *d = &r->d[i];
      if (d->done) continue;
      if (d->in_pipe > 0) wr[i] = n, p[n++] = (struct pollfd){.fd = d->dst, .events = POLLOUT};
      else if (!d->eof) rd[i] = n, p[n++] = (struct pollfd){.fd = d->src, .events = POLLIN};
    }
    int s = n;
    p[n++] = (struct pollfd){.fd = r->stop_fd, .events = POLLIN};
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      r->err = errno, r->end = END_ERROR;
      break;
    }
    if (p[s].revents) {
      r->end = END_STOPPED;
      break;
    }
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
      // POLLHUP/POLLERR count as ready: the splice then reports the end or the error.
      bool readable = rd[i] >= 0 && p[rd[i]].revents != 0;
      bool writable = wr[i] >= 0 && p[wr[i]].revents != 0;
      if (readable || writable) ok = step(r, &r->d[i], readable, writable);
    }
    if (!ok) break;
  }
  napi_call_threadsafe_function(r->done_fn, r, napi_tsfn_blocking);
  napi_release_threadsafe_function(r->done_fn, napi_tsfn_release);
  return NULL;
}

static void close_pipes(relay_t *r) {
  for (int i = 0; i < 2; i++) {
    if (r->d[i].pipe_r >= 0) close(r->d[i].pipe_r);
    if (r->d[i].pipe_w >= 0) close(r->d[i].pipe_w);
  }
}

static const char *END_NAMES[] = {"eof", "limit", "stopped", "error"};

// On the JS thread: the callback gets {end, up, down, error?}; the sockets are the caller's again.
static void call_done(napi_env env, napi_value cb, void *ctx, void *data) {
  relay_t *r = data;
  pthread_join(r->thread, NULL);
  close_pipes(r);
  close(r->stop_fd);
  r->stopper->fd = -1;
  unref_stopper(r->stopper);
  if (env != NULL) {
    napi_value res, v, undef;
    napi_create_object(env, &res);
    napi_create_string_utf8(env, END_NAMES[r->end], NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, res, "end", v);
    napi_create_double(env, (double)r->d[0].bytes, &v);
    napi_set_named_property(env, res, "up", v);
    napi_create_double(env, (double)r->d[1].bytes, &v);
    napi_set_named_property(env, res, "down", v);
    if (r->end == END_ERROR) {
      napi_create_string_utf8(env, strerror(r->err), NAPI_AUTO_LENGTH, &v);
      napi_set_named_property(env, res, "error", v);
    }
    napi_delete_reference(env, r->budget_ref);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 1, &res, NULL);
  }
  (void)ctx;
  free(r);
}

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static void finalize_stopper(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  unref_stopper(data);
}

// relay(clientFd, destinationFd, budget: BigInt64Array (shared, [0] = bytes used), limit, done)
// -> stop(): wakes the thread, which ends the tunnel ("stopped") and calls done.
static napi_value stop_relay(napi_env env, napi_callback_info info) {
  void *data;
  napi_get_cb_info(env, info, NULL, NULL, NULL, &data);
  int fd = ((stopper_t *)data)->fd;
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    (void)w;
  }
  return NULL;
}

// A descriptor argument: a number that is a whole non-negative int (1.5, "3", -1 are not).
static bool fd_arg(napi_env env, napi_value v, int *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int)d) return false;
  *out = (int)d;
  return true;
}

static napi_value start_relay(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_error(env, "relay(clientFd, destinationFd, budget, limit, done)");
  int a, b;
  double limit;
  if (!fd_arg(env, argv[0], &a) || !fd_arg(env, argv[1], &b))
    return throw_error(env, "relay: file descriptors must be non-negative integers");
  napi_typedarray_type type;
  size_t len;
  void *ptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[2], &type, &len, &ptr, &ab, &off) != napi_ok || type != napi_bigint64_array || len < 1)
    return throw_error(env, "relay: budget must be a BigInt64Array");
  if (napi_get_value_double(env, argv[3], &limit) != napi_ok || !(limit >= 0))
    return throw_error(env, "relay: limit must be a number >= 0");

  relay_t *r = calloc(1, sizeof *r);
  if (!r) return throw_error(env, "relay: out of memory");
  r->used = ptr;
  r->limit = limit > 9e18 ? INT64_MAX : (int64_t)limit;
  int fds[2][2] = {{-1, -1}, {-1, -1}};
  for (int i = 0; i < 2; i++) {
    if (pipe2(fds[i], O_NONBLOCK | O_CLOEXEC) != 0) {
      for (int j = 0; j < 2; j++)
        for (int k = 0; k < 2; k++)
          if (fds[j][k] >= 0) close(fds[j][k]);
      free(r);
      return throw_error(env, "relay: pipe2 failed");
    }
    fcntl(fds[i][1], F_SETPIPE_SZ, PIPE_BYTES);  // best effort: the default works, slower
  }
  r->d[0] = (dir_t){.src = a, .dst = b, .pipe_r = fds[0][0], .pipe_w = fds[0][1]};
  r->d[1] = (dir_t){.src = b, .dst = a, .pipe_r = fds[1][0], .pipe_w = fds[1][1]};
  r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->stop_fd < 0) {
    close_pipes(r);
    free(r);
    return throw_error(env, "relay: eventfd failed");
  }
  napi_value name;
  napi_create_string_utf8(env, "sigil-relay", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[2], 1, &r->budget_ref);
  if (napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL, NULL, call_done, &r->done_fn) != napi_ok) {
    napi_delete_reference(env, r->budget_ref);
    close_pipes(r);
    close(r->stop_fd);
    free(r);
    return throw_error(env, "relay: done must be a function");
  }
  stopper_t *stopper = malloc(sizeof *stopper);
  if (!stopper) {
    napi_release_threadsafe_function(r->done_fn, napi_tsfn_abort);
    napi_delete_reference(env, r->budget_ref);
    close_pipes(r);
    close(r->stop_fd);
    free(r);
    return throw_error(env, "relay: out of memory");
  }
  *stopper = (stopper_t){.fd = r->stop_fd, .refs = 2};
  r->stopper = stopper;
  // The loop needs little stack; a job may hold many tunnels at once (max_connections).
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int created = pthread_create(&r->thread, &attr, run, r);
  pthread_attr_destroy(&attr);
  if (created != 0) {
    napi_release_threadsafe_function(r->done_fn, napi_tsfn_abort);
    napi_delete_reference(env, r->budget_ref);
    close_pipes(r);
    close(r->stop_fd);
    free(r);
    free(stopper);
    return throw_error(env, "relay: thread creation failed");
  }
  napi_value stop;
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, stop_relay, stopper, &stop);
  napi_add_finalizer(env, stop, stopper, finalize_stopper, NULL, NULL);
  return stop;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "relay", NAPI_AUTO_LENGTH, start_relay, NULL, &fn);
  napi_set_named_property(env, exports, "relay", fn);
  return exports;
}

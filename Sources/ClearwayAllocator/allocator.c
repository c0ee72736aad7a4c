// The worker executables link jemalloc (Debian's libjemalloc2), which replaces glibc's malloc for
// the whole process: the Swift runtime, Foundation and librdkafka alike.
//
// Why (scripts/bench runtime, a pass-through worker, same runs, glibc with MALLOC_ARENA_MAX=2 as
// the baseline): a worker allocates each output and its headers on its loop thread and
// librdkafka frees them on its broker threads, which leaves glibc's per-thread cache empty and
// sorts the other threads' frees on every allocation (perf: glibc's _int_malloc alone was 11 % of
// the CPU). With jemalloc, CPU per record fell from 4.9–5.6 to 4.0–4.2 µs at-least-once and
// from 6.0–6.8 to 5.5–5.7 µs exactly-once, at the same peak RSS (58–63 MiB). The enricher, whose
// time goes to JSON and its state, was the same on either (scripts/bench enricher, 338–367 µs
// per order).
//
// The options, read by jemalloc at start-up (each one set in `MALLOC_CONF` overrides the one here):
// - narenas:2 — two arenas, not four per core: a worker is one loop and a few librdkafka
//   threads, and every arena keeps pages of its own (jemalloc's default peaked at 65–78 MiB);
// - dirty_decay_ms:1000 — freed pages go back to the kernel about a second after they are freed,
//   not ten (the purge runs as the process allocates; an idle worker keeps them until it works).
// Lazily-freed ("muzzy") pages are not kept at all: jemalloc's default since 5.2.
// Tried and dropped: one arena with freed pages returned at once (narenas:1, dirty_decay_ms:0)
// peaked 6–8 MiB lower but spent about 75 % more CPU per record (7.2 µs at-least-once).
#include "ClearwayAllocator.h"

#ifdef __linux__
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000";
#endif

// The worker executables link jemalloc (Debian's libjemalloc2), which replaces glibc's malloc for
// the whole process: the Swift runtime, Foundation and librdkafka alike.
//
// Why (scripts/bench runtime, a pass-through worker, same runs, glibc with MALLOC_ARENA_MAX=2 as
// the baseline): a worker allocates each output and its headers on its loop thread and
// librdkafka frees them on its broker threads, which leaves glibc's per-thread cache empty and
// sorts the other threads' frees on every allocation (perf: glibc's _int_malloc alone was 11 % of
// the CPU). With jemalloc, CPU per record fell from 4.9–5.6 to 4.0–4.2 µs at-least-once and
// from 6.0–6.8 to 5.5–5.7 µs exactly-once, at the same peak RSS (58–63 MB).
//
// The options, read by jemalloc at start-up (`MALLOC_CONF` in the environment wins):
// - narenas:2 — two arenas, not four per core: a worker is one loop and a few librdkafka
//   threads, and every arena keeps pages of its own (the default peaked at 65–78 MB);
// - dirty_decay_ms:1000 — freed pages go back to the kernel after about a second, not ten;
// - muzzy_decay_ms:0 — and are not kept as lazily-freed pages after that.
// Tried and dropped: one arena with freed pages returned at once (narenas:1, dirty_decay_ms:0)
// peaked 6–8 MB lower but spent about 75 % more CPU per record (7.2 µs at-least-once).
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";

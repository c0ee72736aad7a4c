#ifndef CLEARWAY_ALLOCATOR_H
#define CLEARWAY_ALLOCATOR_H

#ifdef __linux__
/// The options the executables that link this target give jemalloc (see allocator.c); each option
/// set in `MALLOC_CONF` overrides the one here.
extern const char *malloc_conf;
#endif

#endif

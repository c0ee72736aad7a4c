#ifndef CLEARWAY_ALLOCATOR_H
#define CLEARWAY_ALLOCATOR_H

/// The jemalloc options the worker executables are built with (see allocator.c); `MALLOC_CONF`
/// in the environment overrides them.
extern const char *malloc_conf;

#endif

/* OpenBSD <sys/types.h> on sparc64 (LP64): what the program meets. */
#ifndef SHIM_SYS_TYPES_H
#define SHIM_SYS_TYPES_H
#include <shim_size_t.h>
#include <stdint.h>
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef int32_t dev_t;
typedef int64_t off_t;
typedef long ssize_t;
typedef int64_t time_t;
#endif

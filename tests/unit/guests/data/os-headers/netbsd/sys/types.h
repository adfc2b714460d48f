/*
 * NetBSD <sys/types.h> on amd64: the BSD short names, the types the
 * programs meet, and major()/minor() of the 64-bit dev_t (12-bit major
 * in bits 8-19, minor in bits 0-7 and 20-31).
 */
#ifndef SHIM_SYS_TYPES_H
#define SHIM_SYS_TYPES_H
#include <shim_size_t.h>
#include <stdint.h>
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef uint64_t dev_t;
typedef int32_t devmajor_t;
typedef int32_t devminor_t;
typedef uint32_t mode_t;
typedef int64_t off_t;
typedef long ssize_t;
typedef int64_t time_t;
typedef int suseconds_t;
#define major(x)	((devmajor_t)(((uint32_t)(x) & 0x000fff00) >> 8))
#define minor(x)	((devminor_t)((((uint32_t)(x) & 0xfff00000) >> 12) | \
			    (((uint32_t)(x) & 0x000000ff) >> 0)))
#endif

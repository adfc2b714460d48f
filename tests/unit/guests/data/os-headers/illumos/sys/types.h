/*
 * illumos <sys/types.h>, 64-bit: dev_t is an unsigned long and major()/
 * minor() are functions in <sys/mkdev.h>; caddr_t is what the default
 * (non-XPG) mmap() takes.
 */
#ifndef SHIM_SYS_TYPES_H
#define SHIM_SYS_TYPES_H
#include <shim_size_t.h>
#include <stdint.h>
typedef unsigned char uchar_t;
typedef unsigned short ushort_t;
typedef unsigned int uint_t;
typedef unsigned long ulong_t;
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef char *caddr_t;
typedef ulong_t dev_t;
typedef uint_t major_t;
typedef uint_t minor_t;
typedef uint_t mode_t;
typedef long off_t;
typedef long ssize_t;
typedef long time_t;
typedef long suseconds_t;
#endif

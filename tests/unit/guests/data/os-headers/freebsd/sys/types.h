/*
 * FreeBSD <sys/types.h> on amd64: the BSD short names, the types the
 * programs meet, and major()/minor() (64-bit dev_t since FreeBSD 12, the
 * functions returning int).
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
typedef uint16_t mode_t;
typedef int64_t off_t;
typedef long ssize_t;
typedef long time_t;
typedef long suseconds_t;
static inline int __major(dev_t d)
{
	return (int)(((d >> 32) & 0xffffff00) | ((d >> 8) & 0xff));
}
static inline int __minor(dev_t d)
{
	return (int)(((d >> 24) & 0xff00) | (d & 0xffff00ff));
}
#define major(d) __major(d)
#define minor(d) __minor(d)
#endif

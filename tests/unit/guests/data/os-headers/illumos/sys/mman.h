/*
 * illumos <sys/mman.h> (usr/src/uts/common/sys/mman.h) as a default
 * compile sees it: without _XPG4_2 or _POSIX_C_SOURCE > 2 mmap() and
 * munmap() take and return caddr_t.  MAP_ANON is 0x100.
 */
#ifndef SHIM_SYS_MMAN_H
#define SHIM_SYS_MMAN_H
#include <sys/types.h>
#define PROT_READ	0x1
#define PROT_WRITE	0x2
#define PROT_NONE	0x0
#define MAP_PRIVATE	2
#define MAP_ANON	0x100
#define MAP_ANONYMOUS	MAP_ANON
extern caddr_t mmap(caddr_t, size_t, int, int, int, off_t);
extern int munmap(caddr_t, size_t);
#define MAP_FAILED	((void *) -1)
#endif

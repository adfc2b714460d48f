/* FreeBSD <sys/mman.h> (sys/sys/mman.h). */
#ifndef SHIM_SYS_MMAN_H
#define SHIM_SYS_MMAN_H
#include <sys/types.h>
#define PROT_NONE	0x00
#define PROT_READ	0x01
#define PROT_WRITE	0x02
#define MAP_PRIVATE	0x0002
#define MAP_ANON	0x1000
#define MAP_ANONYMOUS	MAP_ANON
#define MAP_FAILED	((void *)-1)
void *mmap(void *, size_t, int, int, int, off_t);
int munmap(void *, size_t);
#endif

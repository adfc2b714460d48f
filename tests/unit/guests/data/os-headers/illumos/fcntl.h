/* illumos <fcntl.h> (usr/src/uts/common/sys/fcntl.h): O_NONBLOCK is 0x80. */
#ifndef SHIM_FCNTL_H
#define SHIM_FCNTL_H
#include <sys/types.h>
#define O_RDONLY	0
#define O_WRONLY	1
#define O_RDWR		2
#define O_NONBLOCK	0x80
extern int open(const char *, int, ...);
#endif

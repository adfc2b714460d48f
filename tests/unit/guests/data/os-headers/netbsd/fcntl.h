/* NetBSD <fcntl.h> (sys/sys/fcntl.h): open() and its flags. */
#ifndef SHIM_FCNTL_H
#define SHIM_FCNTL_H
#define O_RDONLY	0x00000000
#define O_WRONLY	0x00000001
#define O_RDWR		0x00000002
#define O_NONBLOCK	0x00000004
int open(const char *, int, ...);
#endif

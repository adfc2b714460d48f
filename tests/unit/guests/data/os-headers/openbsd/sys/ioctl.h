/* OpenBSD <sys/ioctl.h>: <sys/ioccom.h> and ioctl(int, unsigned long, ...). */
#ifndef SHIM_SYS_IOCTL_H
#define SHIM_SYS_IOCTL_H
#include <sys/ioccom.h>
int ioctl(int, unsigned long, ...);
#endif

/* NetBSD <time.h>: clock_gettime (CLOCK_MONOTONIC is 3, sys/sys/time.h). */
#ifndef SHIM_TIME_H
#define SHIM_TIME_H
#include <sys/types.h>
typedef int clockid_t;
struct timespec {
	time_t tv_sec;
	long tv_nsec;
};
#define CLOCK_MONOTONIC 3
int clock_gettime(clockid_t, struct timespec *);
#endif

/* <unistd.h>: the POSIX calls the guest programs make; getopt's globals. */
#ifndef SHIM_UNISTD_H
#define SHIM_UNISTD_H
#include <sys/types.h>

int close(int);
ssize_t read(int, void *, size_t);
ssize_t write(int, const void *, size_t);
void sync(void);
int getopt(int, char *const[], const char *);
extern char *optarg;
extern int optind, opterr, optopt;
#endif

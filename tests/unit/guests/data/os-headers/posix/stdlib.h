/* <stdlib.h>: what the guest programs call (ISO C). */
#ifndef SHIM_STDLIB_H
#define SHIM_STDLIB_H
#include <shim_size_t.h>

void *malloc(size_t);
void free(void *);
int atoi(const char *);
long atol(const char *);
double atof(const char *);
long strtol(const char *, char **, int);
unsigned long strtoul(const char *, char **, int);
char *getenv(const char *);
void exit(int) __attribute__((noreturn));
#endif

/* <string.h>: what the guest programs call (ISO C). */
#ifndef SHIM_STRING_H
#define SHIM_STRING_H
#include <shim_size_t.h>

void *memset(void *, int, size_t);
void *memcpy(void *, const void *, size_t);
int memcmp(const void *, const void *, size_t);
size_t strlen(const char *);
int strcmp(const char *, const char *);
size_t strcspn(const char *, const char *);
char *strstr(const char *, const char *);
char *strerror(int);
#endif

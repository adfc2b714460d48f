/* <stdio.h>: the stream calls the guest programs make (ISO C / POSIX). */
#ifndef SHIM_STDIO_H
#define SHIM_STDIO_H
#include <shim_size_t.h>

typedef struct shim_file FILE;
extern FILE *stdout;
extern FILE *stderr;

#define EOF (-1)

FILE *fopen(const char *, const char *);
int fclose(FILE *);
int fflush(FILE *);
char *fgets(char *, int, FILE *);
int fputs(const char *, FILE *);
int puts(const char *);
int putchar(int);
int printf(const char *, ...) __attribute__((format(printf, 1, 2)));
int fprintf(FILE *, const char *, ...) __attribute__((format(printf, 2, 3)));
int snprintf(char *, size_t, const char *, ...)
	__attribute__((format(printf, 3, 4)));
int vprintf(const char *, __builtin_va_list) __attribute__((format(printf, 1, 0)));
int vsnprintf(char *, size_t, const char *, __builtin_va_list)
	__attribute__((format(printf, 3, 0)));
int fscanf(FILE *, const char *, ...) __attribute__((format(scanf, 2, 3)));
void perror(const char *);
#endif

/*
 * size_t and NULL, which <stdio.h>, <stdlib.h>, <string.h> and
 * <sys/types.h> each provide on their own; offsetof stays in <stddef.h>.
 */
#ifndef SHIM_SIZE_T_H
#define SHIM_SIZE_T_H
typedef __SIZE_TYPE__ size_t;
#define NULL ((void *)0)
#endif

/* <stddef.h> of an LP64 target, from the compiler's builtins. */
#ifndef SHIM_STDDEF_H
#define SHIM_STDDEF_H
#include <shim_size_t.h>
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#define offsetof(t, m) __builtin_offsetof(t, m)
#endif

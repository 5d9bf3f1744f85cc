/* string.h for the freestanding Android build (native/freestanding/README.md): the four
 * functions the core and its JNI use, implemented in thk_libc.c. */
#ifndef THK_FREESTANDING_STRING_H
#define THK_FREESTANDING_STRING_H
#include <stddef.h>
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *text);
#endif

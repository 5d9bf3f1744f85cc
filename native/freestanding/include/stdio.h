/* stdio.h for the freestanding Android build: jni.h includes it and uses nothing from it. */
#ifndef THK_FREESTANDING_STDIO_H
#define THK_FREESTANDING_STDIO_H
#endif

/* math.h for the freestanding Android build: what the core uses, as compiler builtins (single
 * AArch64 instructions: frintp, frintm, frinti, fabs, fsqrt; IEEE-754 exact, as libm's are). */
#ifndef THK_FREESTANDING_MATH_H
#define THK_FREESTANDING_MATH_H
#define ceil(x) __builtin_ceil(x)
#define floor(x) __builtin_floor(x)
#define fabs(x) __builtin_fabs(x)
#define sqrtf(x) __builtin_sqrtf(x)
#define nearbyint(x) __builtin_nearbyint(x)
#define isfinite(x) __builtin_isfinite(x)
#endif

"""The frozen probability tables of the entropy coder (normative: docs/bitstream.md §5 lists them).

Table t models magnitudes |r| of a two-sided geometric residual distribution with mean
0.03·1.5^t: frequencies of magnitudes 0..15 and of the escape symbol (magnitude >= 16), out of
2^15. They were derived once (rounded to integers, at least 1, the largest entry absorbing the
rounding) and are constants now: encoders and decoders on every platform use these numbers.
"""
from __future__ import annotations

FREQUENCY_BITS = 15
TOTAL = 1 << FREQUENCY_BITS
ESCAPE = 16  # symbol index of the escape; magnitudes 0..15 are coded directly

FREQUENCIES: tuple[tuple[int, ...], ...] = (
    (31786, 954, 14, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (31313, 1409, 32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (30618, 2065, 70, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (29605, 2991, 151, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (28156, 4253, 321, 24, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (26133, 5880, 661, 74, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (23420, 7786, 1294, 215, 36, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (20017, 9667, 2333, 563, 136, 33, 8, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (16133, 10975, 3731, 1269, 431, 147, 50, 17, 6, 2, 1, 1, 1, 1, 1, 1, 1),
    (12226, 11164, 5096, 2326, 1062, 485, 221, 101, 46, 21, 10, 4, 2, 1, 1, 1, 1),
    (8789, 10144, 5852, 3377, 1948, 1124, 649, 374, 216, 125, 72, 41, 24, 14, 8, 5, 6),
    (6095, 8368, 5742, 3941, 2705, 1856, 1274, 874, 600, 412, 283, 194, 133, 91, 63, 43, 94),
    (4142, 6427, 4983, 3864, 2997, 2324, 1803, 1398, 1084, 841, 652, 506, 392, 304, 236, 183, 632),
)

# Table t is used while the running mean magnitude (in 1/256, after the shift) is in
# [BOUNDS[t-1], BOUNDS[t]): the geometric midpoints between the tables' means.
BOUNDS: tuple[int, ...] = (9, 14, 21, 32, 48, 71, 107, 161, 241, 362, 542, 814)


def _cumulative(frequencies: tuple[int, ...]) -> tuple[int, ...]:
    total, cumulative = 0, [0]
    for frequency in frequencies:
        total += frequency
        cumulative.append(total)
    assert total == TOTAL
    return tuple(cumulative)


CUMULATIVE: tuple[tuple[int, ...], ...] = tuple(_cumulative(row) for row in FREQUENCIES)

"""A binary-output arithmetic coder with 32-bit integer state (Witten, Neal & Cleary, 1987).

Byte-exact and integer-only, so every platform decodes the same symbols. Symbols are coded with
cumulative frequencies (low, high, total), total <= 2^16. The encoder ends with two bits that
pin the final interval, pads with zero bits to a byte, and drops trailing zero bytes: the
decoder reads zero bits past the end of its input, which is what those bytes held.
"""
from __future__ import annotations

PRECISION = 32
TOP = (1 << PRECISION) - 1
HALF = 1 << (PRECISION - 1)
QUARTER = 1 << (PRECISION - 2)
MAX_TOTAL = 1 << 16


def _narrow(low_state: int, high_state: int, low: int, high: int, total: int) -> tuple[int, int]:
    """The interval [low_state, high_state] narrowed to the symbol [low, high) of `total`
    (the same update on both sides)."""
    span = high_state - low_state + 1
    return low_state + span * low // total, low_state + span * high // total - 1


class ArithmeticEncoder:
    def __init__(self) -> None:
        self.low = 0
        self.high = TOP
        self.pending = 0
        self.bits: list[int] = []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        self.bits.extend([1 - bit] * self.pending)
        self.pending = 0

    def encode(self, low: int, high: int, total: int) -> None:
        """Code the symbol occupying [low, high) of `total`."""
        self.low, self.high = _narrow(self.low, self.high, low, high, total)
        while True:
            if self.high < HALF:
                self._emit(0)
            elif self.low >= HALF:
                self._emit(1)
                self.low -= HALF
                self.high -= HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                self.pending += 1
                self.low -= QUARTER
                self.high -= QUARTER
            else:
                break
            self.low = 2 * self.low
            self.high = 2 * self.high + 1

    def encode_bits(self, value: int, count: int) -> None:
        """`count` equiprobable bits of `value`, most significant first."""
        for shift in range(count - 1, -1, -1):
            bit = value >> shift & 1
            self.encode(bit, bit + 1, 2)

    def finish(self) -> bytes:
        self.pending += 1
        self._emit(0 if self.low < QUARTER else 1)
        bits = self.bits + [0] * (-len(self.bits) % 8)
        data = bytearray()
        for start in range(0, len(bits), 8):
            byte = 0
            for bit in bits[start:start + 8]:
                byte = byte << 1 | bit
            data.append(byte)
        return bytes(data).rstrip(b"\x00")


class ArithmeticDecoder:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0  # next bit to read
        self.low = 0
        self.high = TOP
        self.value = 0
        for _ in range(PRECISION):
            self.value = self.value << 1 | self._bit()

    def _bit(self) -> int:
        index = self.position >> 3
        bit = self.data[index] >> (7 - (self.position & 7)) & 1 if index < len(self.data) else 0
        self.position += 1
        return bit

    def target(self, total: int) -> int:
        """The cumulative count the next symbol's interval contains (0 <= result < total)."""
        span = self.high - self.low + 1
        return ((self.value - self.low + 1) * total - 1) // span

    def consume(self, low: int, high: int, total: int) -> None:
        """Remove the symbol [low, high) found through `target`."""
        self.low, self.high = _narrow(self.low, self.high, low, high, total)
        while True:
            if self.high < HALF:
                pass
            elif self.low >= HALF:
                self.low -= HALF
                self.high -= HALF
                self.value -= HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                self.low -= QUARTER
                self.high -= QUARTER
                self.value -= QUARTER
            else:
                break
            self.low = 2 * self.low
            self.high = 2 * self.high + 1
            self.value = 2 * self.value + self._bit()

    def decode_bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            bit = 1 if self.target(2) >= 1 else 0
            self.consume(bit, bit + 1, 2)
            value = value << 1 | bit
        return value

    @property
    def bits_past_end(self) -> int:
        return max(0, self.position - 8 * len(self.data))

"""Coding signed integer residuals with a backward-adaptive magnitude model (no side information).

Each group of residuals (e.g. one packet's keypoint deviations) keeps a running sum of the
magnitudes coded so far, `sum16` (in 1/16) over `count` values, started from a prior
(`GroupPrior`). Before each value, the state picks a shift `s` (low bits sent raw) and one of the
`tables.FREQUENCIES`; the value is then coded as

    magnitude >> s  with the table (escape + Exp-Golomb above 15), the s low bits raw,
    a sign bit when the magnitude is not 0.

All arithmetic is on integers, so every platform picks the same tables. The state starts afresh
in every packet: a lost packet never leaves a decoder with a different model state.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import tables
from .arithmetic import ArithmeticDecoder, ArithmeticEncoder
from .errors import CodecError

MAX_SHIFT = 24
MAX_ESCAPE_BITS = 24   # Exp-Golomb prefix length limit: magnitudes stay below 2^25 << shift
HALVE_AT = 32          # the running mean forgets: halve sum and count when count reaches this


@dataclass
class GroupState:
    """Running magnitude statistics of one group in one packet."""
    sum16: int
    count: int

    @classmethod
    def prior(cls, mean16: int, count: int = 2) -> GroupState:
        """A prior of `count` virtual values with mean magnitude `mean16`/16."""
        return cls(mean16 * count, count)

    def model(self) -> tuple[int, int]:
        """(shift, table index) for the next value."""
        shift = 0
        while shift < MAX_SHIFT and self.sum16 >= (64 * self.count) << shift:  # mean >= 4·2^shift
            shift += 1
        mean256 = (self.sum16 * 16) // (self.count << shift)
        table = 0
        while table < len(tables.BOUNDS) and mean256 >= tables.BOUNDS[table]:
            table += 1
        return shift, table

    def update(self, magnitude: int) -> None:
        self.sum16 += 16 * magnitude
        self.count += 1
        if self.count >= HALVE_AT:
            self.sum16 //= 2
            self.count //= 2


def encode_values(encoder: ArithmeticEncoder, values: list[int], state: GroupState) -> None:
    for value in values:
        magnitude = abs(value)
        shift, table = state.model()
        high = magnitude >> shift
        cumulative = tables.CUMULATIVE[table]
        symbol = min(high, tables.ESCAPE)
        encoder.encode(cumulative[symbol], cumulative[symbol + 1], tables.TOTAL)
        if symbol == tables.ESCAPE:
            _encode_exp_golomb(encoder, high - tables.ESCAPE)
        if shift:
            encoder.encode_bits(magnitude & ((1 << shift) - 1), shift)
        if magnitude:
            encoder.encode_bits(1 if value < 0 else 0, 1)
        state.update(magnitude)


def decode_values(decoder: ArithmeticDecoder, count: int, state: GroupState) -> list[int]:
    values = []
    for _ in range(count):
        shift, table = state.model()
        cumulative = tables.CUMULATIVE[table]
        target = decoder.target(tables.TOTAL)
        symbol = _find_symbol(cumulative, target)
        decoder.consume(cumulative[symbol], cumulative[symbol + 1], tables.TOTAL)
        high = symbol if symbol < tables.ESCAPE else tables.ESCAPE + _decode_exp_golomb(decoder)
        magnitude = high << shift | (decoder.decode_bits(shift) if shift else 0)
        negative = decoder.decode_bits(1) if magnitude else 0
        values.append(-magnitude if negative else magnitude)
        state.update(magnitude)
    return values


def _find_symbol(cumulative: tuple[int, ...], target: int) -> int:
    symbol = 0
    while cumulative[symbol + 1] <= target:
        symbol += 1
    return symbol


def _encode_exp_golomb(encoder: ArithmeticEncoder, value: int) -> None:
    """Order-0 Exp-Golomb with a unary prefix of ones ended by a zero (padding zeros end it)."""
    value += 1
    length = value.bit_length() - 1
    if length > MAX_ESCAPE_BITS:
        raise CodecError(f"value too large for the escape code ({value - 1})")
    encoder.encode_bits((1 << (length + 1)) - 2, length + 1)  # `length` ones, then a zero
    encoder.encode_bits(value & ((1 << length) - 1), length)


def _decode_exp_golomb(decoder: ArithmeticDecoder) -> int:
    length = 0
    while decoder.decode_bits(1):
        length += 1
        if length > MAX_ESCAPE_BITS:
            raise CodecError("escape code longer than 24 bits (corrupt packet)")
    return ((1 << length) | decoder.decode_bits(length)) - 1

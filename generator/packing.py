"""Host-side packing of integer elements into the stream words of the HLS library.

This module is the single Python definition of the formats that hls/include/syq implements:

- Element kinds (`ElementKind`, same numbers as `syq::ElementKind`): unsigned, signed two's
  complement, and bipolar (1 bit: raw 1 is +1, raw 0 is -1).
- Stream words: a word of `n` elements of `b` bits has lane 0 at the LSB, and lane i occupies
  bits [i*b, (i+1)*b). On the host a word is `limbs_per_word(n*b)` uint64 limbs, least
  significant limb first, so words wider than 64 bits work. Word arrays have shape
  (..., words, limbs).
- Word files (`write_words` / `read_words`, and `syq/testbench.hpp` in C++): the limbs of every
  word, each limb little-endian, words one after another.
- AXI-stream frames (`pack_axi_frames` / `unpack_axi_frames`, `syq/axis.hpp` in C++): each frame
  packs its elements LSB first into `axi_bits`-wide words, one element per slot, and is padded
  with zero slots to whole AXI words. Input frames use slots of `element_bits`. Output frames use
  `container_bits` slots that hold the sign-extended (signed) or zero-extended element.
- MVAU parameter layout (`fold_matrix_weights`, `fold_thresholds`): row r of a (MH, MW) matrix
  belongs to PE r % pe and neuron fold r // pe. Column c is lane c % simd of synapse fold c // simd.
"""

import enum
from pathlib import Path

import numpy as np

from syq.errors import SyqError

_LIMB_BITS = 64
_MAX_ELEMENT_BITS = 64


class ElementKind(enum.IntEnum):
    """Interpretation of an element's raw bits, numbered like `syq::kUnsigned`, `syq::kSigned`, `syq::kBipolar`."""

    UNSIGNED = 0
    SIGNED = 1
    BIPOLAR = 2


def as_element_kind(kind):
    """Return `kind` (an ElementKind, its value, or its name such as "signed") as an ElementKind."""
    if isinstance(kind, str):
        try:
            return ElementKind[kind.upper()]
        except KeyError:
            raise SyqError(
                f"invalid element kind {kind!r}: use 'unsigned', 'signed' or 'bipolar'"
            ) from None
    try:
        return ElementKind(kind)
    except ValueError:
        raise SyqError(
            f"invalid element kind {kind!r}: use ElementKind.UNSIGNED, SIGNED or BIPOLAR"
        ) from None


def limbs_per_word(word_bits):
    """Return the number of uint64 limbs that store one word of `word_bits` bits."""
    if word_bits < 1:
        raise SyqError(f"invalid word width {word_bits}: a word has at least 1 bit")
    return -(-word_bits // _LIMB_BITS)


def element_range(bits, kind):
    """Return the (minimum, maximum) value of a `bits`-bit element of `kind`."""
    kind = as_element_kind(kind)
    _check_element_bits(bits, kind)
    if kind == ElementKind.BIPOLAR:
        return -1, 1
    if kind == ElementKind.SIGNED:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def encode_elements(values, bits, kind):
    """Return the raw `bits`-bit codes (uint64) of integer element values.

    Signed values become their two's complement, bipolar +1 becomes 1 and -1 becomes 0.
    Raises SyqError when a value is not an integer or is out of range (or not +-1 for bipolar).
    """
    kind = as_element_kind(kind)
    values = _as_integer_array(values, f"{bits}-bit {kind.name.lower()} elements")
    low, high = element_range(bits, kind)
    if kind == ElementKind.BIPOLAR:
        invalid = (values != 1) & (values != -1)
    else:
        invalid = (values < low) | (values > high)
    if np.any(invalid):
        index = tuple(int(i) for i in np.argwhere(invalid)[0])
        raise SyqError(
            f"value {values[index]} at index {index} does not fit {bits}-bit "
            f"{kind.name.lower()} elements (range {low}..{high}{', +-1 only' if kind == ElementKind.BIPOLAR else ''}): "
            "widen the element type or clip the values"
        )
    if kind == ElementKind.BIPOLAR:
        return (values > 0).astype(np.uint64)
    # Two's complement in `bits` bits: the int64 -> uint64 cast wraps negative values modulo 2**64,
    # and the mask keeps the low bits.
    codes = values.astype(np.uint64)
    if bits < _LIMB_BITS:
        codes &= np.uint64((1 << bits) - 1)
    return codes


def decode_elements(codes, bits, kind):
    """Return the int64 values of raw `bits`-bit element codes (the inverse of encode_elements).

    Bits of a code above `bits` are ignored.
    """
    kind = as_element_kind(kind)
    _check_element_bits(bits, kind)
    codes = np.asarray(codes, dtype=np.uint64)
    if bits < _LIMB_BITS:
        codes = codes & np.uint64((1 << bits) - 1)
    if kind == ElementKind.BIPOLAR:
        return np.where(codes == 1, 1, -1).astype(np.int64)
    if kind == ElementKind.UNSIGNED:
        if bits == _LIMB_BITS and np.any(codes >> np.uint64(63)):
            raise SyqError("unsigned 64-bit elements above 2**63 - 1 do not fit int64: use signed elements")
        return codes.astype(np.int64)
    values = codes.astype(np.int64)  # wraps codes >= 2**63, which is right for 64-bit elements
    if bits < _LIMB_BITS:
        sign = np.int64(1 << (bits - 1))
        values = (values ^ sign) - sign
    return values


def pack_words(values, bits, kind, elements_per_word):
    """Pack integer elements into stream words of `elements_per_word` lanes of `bits` bits.

    `values` has shape (..., L), with L a multiple of `elements_per_word`. Consecutive elements
    fill lanes 0, 1, ... of one word, then the next word. Returns uint64 limbs of shape
    (..., L // elements_per_word, limbs_per_word(elements_per_word * bits)).
    """
    values = np.asarray(values)
    codes = encode_elements(values, bits, kind)
    return _pack_codes(codes, bits, elements_per_word)


def unpack_words(words, bits, kind, elements_per_word):
    """Unpack stream words into int64 element values (the inverse of pack_words).

    `words` has shape (..., W, limbs), and the result has shape (..., W * elements_per_word).
    """
    codes = _unpack_codes(words, bits, elements_per_word)
    return decode_elements(codes, bits, kind)


def axi_words_per_frame(frame_elements, slot_bits, axi_bits):
    """Return the number of AXI words of one frame of `frame_elements` elements in `slot_bits` slots."""
    lanes = _axi_lanes(slot_bits, axi_bits)
    return -(-frame_elements // lanes)


def pack_axi_frames(values, element_bits, element_kind, axi_bits, container_bits=None):
    """Pack frames of elements into AXI-stream words, as syq/axis.hpp reads or writes them.

    `values` has shape (frames, frame_elements). Without `container_bits` each element takes
    `element_bits` bits (the input format of `axis_to_stream`). With it each element is
    sign-extended (signed) or zero-extended into `container_bits` (the output format of
    `stream_to_axis`, where a bipolar element keeps its raw bit). Each frame is padded with zero slots
    to whole AXI words. Returns uint64 limbs of shape (frames * words_per_frame, limbs).
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise SyqError(f"invalid frame array shape {values.shape}: expected (frames, frame_elements)")
    slot_bits = _slot_bits(element_bits, container_bits)
    lanes = _axi_lanes(slot_bits, axi_bits)
    codes = encode_elements(values, element_bits, element_kind)
    if as_element_kind(element_kind) == ElementKind.SIGNED and slot_bits > element_bits:
        # Sign-extend: re-encode the decoded value in the wider slot.
        codes = encode_elements(decode_elements(codes, element_bits, element_kind), slot_bits, ElementKind.SIGNED)
    frames, frame_elements = codes.shape
    padded = np.zeros((frames, axi_words_per_frame(frame_elements, slot_bits, axi_bits) * lanes), dtype=np.uint64)
    padded[:, :frame_elements] = codes
    words = _pack_codes(padded, slot_bits, lanes)
    return words.reshape(-1, words.shape[-1])


def unpack_axi_frames(words, frame_elements, element_bits, element_kind, axi_bits, container_bits=None):
    """Unpack AXI-stream words into frames of int64 elements (the inverse of pack_axi_frames).

    `words` has shape (frames * words_per_frame, limbs). Padding slots are ignored. With
    `container_bits`, a container whose content is not a valid extension of an `element_bits`
    element raises SyqError.
    """
    slot_bits = _slot_bits(element_bits, container_bits)
    lanes = _axi_lanes(slot_bits, axi_bits)
    per_frame = axi_words_per_frame(frame_elements, slot_bits, axi_bits)
    words = np.asarray(words, dtype=np.uint64)
    if words.ndim != 2 or words.shape[1] != limbs_per_word(axi_bits) or words.shape[0] % per_frame:
        raise SyqError(
            f"invalid AXI word array shape {words.shape}: expected (a multiple of {per_frame} words, "
            f"{limbs_per_word(axi_bits)} limbs) for {frame_elements}-element frames"
        )
    codes = _unpack_codes(words.reshape(-1, per_frame, words.shape[1]), slot_bits, lanes)[:, :frame_elements]
    kind = as_element_kind(element_kind)
    if slot_bits == element_bits:
        return decode_elements(codes, element_bits, kind)
    if kind == ElementKind.SIGNED:
        values = decode_elements(codes, slot_bits, ElementKind.SIGNED)
    else:
        values = codes.astype(np.int64)
    low, high = (0, 1) if kind == ElementKind.BIPOLAR else element_range(element_bits, kind)
    invalid = (values < low) | (values > high)
    if np.any(invalid):
        frame, element = (int(i) for i in np.argwhere(invalid)[0])
        raise SyqError(
            f"AXI container value {values[frame, element]} of frame {frame}, element {element} is not a "
            f"{element_bits}-bit {kind.name.lower()} element: check the stream_to_axis parameters"
        )
    if kind == ElementKind.BIPOLAR:
        return np.where(values == 1, 1, -1).astype(np.int64)
    return values


def write_words(path, words):
    """Write packed words (uint64 limbs, shape (..., limbs)) to a binary word file."""
    words = np.asarray(words, dtype=np.uint64)
    Path(path).write_bytes(words.astype("<u8").tobytes())


def read_words(path, word_bits):
    """Read a binary word file of `word_bits`-bit words as uint64 limbs of shape (words, limbs)."""
    data = Path(path).read_bytes()
    limbs = limbs_per_word(word_bits)
    if len(data) % (8 * limbs):
        raise SyqError(
            f"word file {path} has {len(data)} bytes, not a multiple of {8 * limbs} "
            f"({word_bits}-bit words): the file is truncated or was written for another width"
        )
    return np.frombuffer(data, dtype="<u8").astype(np.uint64).reshape(-1, limbs)


def words_to_hex(words, word_bits):
    """Return each packed word as a hexadecimal string ("0x..."), for C++ initializers of ap_uint<word_bits>."""
    words = np.asarray(words, dtype=np.uint64)
    limbs = limbs_per_word(word_bits)
    digits = -(-word_bits // 4)
    result = []
    for word in words.reshape(-1, limbs):
        value = 0
        for limb in reversed(word.tolist()):
            value = (value << _LIMB_BITS) | limb
        result.append(f"0x{value:0{digits}x}")
    return result


def fold_matrix_weights(matrix, pe, simd):
    """Rearrange a (MH, MW) weight matrix into the MVAU memory layout (pe, tiles, simd).

    Entry [p, nf * (MW // simd) + sf, lane] is row nf * pe + p, column sf * simd + lane.
    `pack_words(result, ..., elements_per_word=simd)` then gives the words of `weights[pe][tiles]`.
    """
    matrix = np.asarray(matrix)
    rows, columns = _matrix_shape(matrix, "weight matrix")
    _check_divides(pe, rows, "pe", "matrix height")
    _check_divides(simd, columns, "simd", "matrix width")
    folded = matrix.reshape(rows // pe, pe, columns // simd, simd).transpose(1, 0, 2, 3)
    return folded.reshape(pe, (rows // pe) * (columns // simd), simd)


def fold_thresholds(thresholds, pe):
    """Rearrange per-row thresholds (MH, N) into the threshold layout (pe, MH // pe, N) of the MVAU and
    thresholding units: entry [p, nf, k] is row (or channel) nf * pe + p."""
    thresholds = np.asarray(thresholds)
    rows, count = _matrix_shape(thresholds, "threshold matrix")
    _check_divides(pe, rows, "pe", "number of rows")
    return thresholds.reshape(rows // pe, pe, count).transpose(1, 0, 2)


def _pack_codes(codes, bits, elements_per_word):
    """Pack raw codes of shape (..., L) into words of shape (..., L // elements_per_word, limbs)."""
    codes = np.asarray(codes, dtype=np.uint64)
    if elements_per_word < 1:
        raise SyqError(f"invalid elements_per_word {elements_per_word}: use at least 1")
    if codes.ndim == 0 or codes.shape[-1] % elements_per_word:
        raise SyqError(
            f"cannot pack {codes.shape[-1] if codes.ndim else 1} elements into words of "
            f"{elements_per_word} elements: the last axis must be a multiple of elements_per_word"
        )
    leading = codes.shape[:-1]
    word_count = codes.shape[-1] // elements_per_word
    word_bits = elements_per_word * bits
    limbs = limbs_per_word(word_bits)
    code_bytes = -(-bits // 8)

    # Bits of every element, LSB first: (N, elements, bits) as uint8.
    element_bytes = codes.reshape(-1, elements_per_word).astype("<u8").view(np.uint8)
    element_bytes = element_bytes.reshape(-1, elements_per_word, 8)[:, :, :code_bytes]
    element_bits = np.unpackbits(element_bytes, axis=-1, bitorder="little")[:, :, :bits]

    # Concatenate the lanes, pad to whole limbs, and pack back into little-endian bytes and limbs.
    word_bit_array = np.zeros((element_bits.shape[0], limbs * _LIMB_BITS), dtype=np.uint8)
    word_bit_array[:, :word_bits] = element_bits.reshape(-1, word_bits)
    packed = np.packbits(word_bit_array, axis=-1, bitorder="little")
    words = np.ascontiguousarray(packed).view("<u8").astype(np.uint64)
    return words.reshape(*leading, word_count, limbs)


def _unpack_codes(words, bits, elements_per_word):
    """Unpack words of shape (..., W, limbs) into raw codes of shape (..., W * elements_per_word)."""
    if elements_per_word < 1:
        raise SyqError(f"invalid elements_per_word {elements_per_word}: use at least 1")
    _check_element_bits(bits, ElementKind.UNSIGNED)
    words = np.asarray(words, dtype=np.uint64)
    word_bits = elements_per_word * bits
    limbs = limbs_per_word(word_bits)
    if words.ndim < 2 or words.shape[-1] != limbs:
        raise SyqError(
            f"invalid word array shape {words.shape}: {elements_per_word} x {bits}-bit words need "
            f"shape (..., words, {limbs}) with {limbs} uint64 limbs per word"
        )
    leading = words.shape[:-2]
    word_count = words.shape[-2]
    code_bytes = -(-bits // 8)

    word_bytes = np.ascontiguousarray(words.reshape(-1, limbs).astype("<u8")).view(np.uint8)
    word_bit_array = np.unpackbits(word_bytes, axis=-1, bitorder="little")[:, :word_bits]
    element_bits = word_bit_array.reshape(-1, elements_per_word, bits)

    # Pad each element to whole bytes, pack its bits LSB first, and widen the bytes to a uint64.
    padded = np.zeros(element_bits.shape[:2] + (8 * code_bytes,), dtype=np.uint8)
    padded[:, :, :bits] = element_bits
    element_bytes = np.zeros(element_bits.shape[:2] + (8,), dtype=np.uint8)
    element_bytes[:, :, :code_bytes] = np.packbits(padded, axis=-1, bitorder="little")
    codes = element_bytes.view("<u8").astype(np.uint64)
    return codes.reshape(*leading, word_count * elements_per_word)


def _check_element_bits(bits, kind):
    if not 1 <= bits <= _MAX_ELEMENT_BITS:
        raise SyqError(f"invalid element width {bits}: elements are 1 to {_MAX_ELEMENT_BITS} bits wide")
    if kind == ElementKind.BIPOLAR and bits != 1:
        raise SyqError(f"invalid bipolar element width {bits}: bipolar elements are 1 bit wide")


def _slot_bits(element_bits, container_bits):
    if container_bits is None:
        return element_bits
    if container_bits < 8 or container_bits & (container_bits - 1) or container_bits < element_bits:
        raise SyqError(
            f"invalid container width {container_bits} for {element_bits}-bit elements: use a power of two "
            "of at least 8 bits and at least the element width"
        )
    return container_bits


def _axi_lanes(slot_bits, axi_bits):
    if axi_bits < 8 or axi_bits % 8 or axi_bits % slot_bits:
        raise SyqError(
            f"invalid AXI width {axi_bits} for {slot_bits}-bit slots: use a multiple of 8 bits that "
            "is also a multiple of the slot width"
        )
    return axi_bits // slot_bits


def _as_integer_array(values, description):
    values = np.asarray(values)
    if values.dtype == np.bool_:
        raise SyqError(f"invalid boolean array for {description}: pass integers (use +-1 for bipolar)")
    if np.issubdtype(values.dtype, np.integer):
        if values.dtype == np.uint64 and values.size and values.max() > np.iinfo(np.int64).max:
            raise SyqError(f"value {values.max()} does not fit int64 for {description}: use smaller values")
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            bad = values[~np.isfinite(values) | (values != np.round(values))].flat[0]
            raise SyqError(
                f"non-integer value {bad} for {description}: quantize the input to integer codes first"
            )
        return values.astype(np.int64)
    raise SyqError(f"invalid array type {values.dtype} for {description}: pass integer or float values")


def _matrix_shape(array, description):
    if array.ndim != 2:
        raise SyqError(f"invalid {description} shape {array.shape}: expected 2 dimensions")
    return array.shape


def _check_divides(divisor, total, divisor_name, total_name):
    if divisor < 1 or total % divisor:
        raise SyqError(f"{divisor_name} {divisor} does not divide the {total_name} {total}: pick a divisor")

"""The syq accelerator on a PYNQ board: overlay, DMA transfers and AXI-lite control.

One batch of N frames runs as follows: the input frames are packed into AXI words by
``Interface.pack_inputs`` and copied into a DMA buffer; the ``frames`` register of the accelerator
receives N; the DMA receive (S2MM) and send (MM2S) transfers start; ``ap_start`` is set; both
transfers are awaited, then ``ap_idle``; the output words are unpacked by
``Interface.unpack_outputs``.

Register offsets come from the overlay's register map (PYNQ reads it from the .hwh file) when it
lists them, else from accelerator.json, which `syq bitstream` fills from the driver header of the
exported HLS IP or, without one, from the Vitis HLS default map: ap_ctrl at 0x00 (bit 0 ap_start,
bit 1 ap_done, bit 2 ap_idle) and the first scalar argument, ``frames``, at 0x10.
"""

import json
import time
from pathlib import Path

import numpy as np

from . import preprocess
from .errors import SyqError
from .interface import Interface

AP_START = 0x1
AP_IDLE = 0x4
IDLE_TIMEOUT_SECONDS = 5.0


def load_config(path):
    """Read accelerator.json."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SyqError(f"{path} not found: run driver.py from the deploy folder that syq "
                       f"bitstream wrote") from None
    except json.JSONDecodeError as error:
        raise SyqError(f"damaged {path}: {error}; write the deploy folder again") from None


def words_to_bytes(words, axi_bits):
    """Return packed AXI words (uint64 limbs, shape (words, limbs)) as the bytes the DMA moves."""
    words = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8"))
    limb_bytes = words.view(np.uint8).reshape(len(words), -1)
    return limb_bytes[:, :axi_bits // 8].reshape(-1)


def bytes_to_words(data, axi_bits):
    """Return DMA bytes as packed AXI words (uint64 limbs, shape (words, limbs))."""
    word_bytes = axi_bits // 8
    data = np.asarray(data, dtype=np.uint8)
    if data.size % word_bytes:
        raise SyqError(f"received {data.size} bytes, not a whole number of {axi_bits}-bit words")
    limbs = -(-axi_bits // 64)
    padded = np.zeros((data.size // word_bytes, limbs * 8), dtype=np.uint8)
    padded[:, :word_bytes] = data.reshape(-1, word_bytes)
    return padded.view("<u8").astype(np.uint64)


class Result:
    """Outputs of a classification: raw accelerator outputs, float scores, labels and timings."""

    def __init__(self, raw, scores, seconds, accelerator_seconds):
        self.raw = raw
        self.scores = scores
        self.labels = scores.argmax(axis=1) if len(scores) else np.zeros(0, np.int64)
        self.seconds = seconds
        self.accelerator_seconds = accelerator_seconds


class Accelerator:
    """The accelerator of an overlay, driven through its AXI DMA.

    `config` is the content of accelerator.json. `overlay` defaults to ``pynq.Overlay(bitfile)``.
    Frames run in batches of at most `batch_size`; buffers are allocated once per batch size.
    """

    def __init__(self, config, bitfile=None, batch_size=1000, overlay=None):
        import pynq  # only present on the board

        self._pynq = pynq
        self.config = config
        self.interface = Interface(**config["interface"])
        self.input_word_bytes = self.interface.axi_input_bits // 8
        self.output_word_bytes = self.interface.axi_output_bits // 8
        self.batch_size = self._check_batch(batch_size)
        if overlay is None:
            if bitfile is None or not Path(bitfile).is_file():
                raise SyqError(f"bitstream {bitfile} not found: build it with build_bitstream.tcl "
                               f"and copy the .bit and .hwh files next to driver.py")
            overlay = pynq.Overlay(str(bitfile))
        self.overlay = overlay
        self.ip = self._overlay_attribute(config["accelerator"])
        self.dma = self._overlay_attribute(config["dma"])
        self.registers = self._register_offsets()
        self._buffers = {}

    def _overlay_attribute(self, name):
        try:
            return getattr(self.overlay, name)
        except AttributeError:
            raise SyqError(f"the overlay has no IP named {name}: load the bitstream built from "
                           f"this deploy folder") from None

    def _check_batch(self, batch_size):
        if batch_size < 1:
            raise SyqError(f"invalid batch size {batch_size}: use at least 1 frame")
        per_frame = max(self.interface.input_words_per_frame * self.input_word_bytes,
                        self.interface.output_words_per_frame * self.output_word_bytes)
        limit = self.config["max_transfer_bytes"] // per_frame
        if batch_size > limit:
            raise SyqError(f"batch size {batch_size} exceeds one DMA transfer "
                           f"({self.config['max_transfer_bytes']} bytes): use at most {limit}")
        return batch_size

    def _register_offsets(self):
        """Return the ap_ctrl and frames offsets, preferring the overlay's register map."""
        offsets = {name: int(value) for name, value in self.config["registers"].items()}
        description = getattr(self.overlay, "ip_dict", {}).get(self.config["accelerator"], {})
        registers = description.get("registers", {})
        for name, key in (("ap_ctrl", "CTRL"), ("frames", "frames")):
            if key in registers:
                offsets[name] = int(registers[key]["address_offset"])
        return offsets

    def _buffer_pair(self, frames):
        if frames not in self._buffers:
            if len(self._buffers) >= 2:  # the full batch and one remainder are enough
                self._free(self._buffers.pop(next(iter(self._buffers))))
            input_bytes = frames * self.interface.input_words_per_frame * self.input_word_bytes
            output_bytes = frames * self.interface.output_words_per_frame * self.output_word_bytes
            self._buffers[frames] = (self._pynq.allocate(shape=(input_bytes,), dtype=np.uint8),
                                     self._pynq.allocate(shape=(output_bytes,), dtype=np.uint8))
        return self._buffers[frames]

    @staticmethod
    def _free(pair):
        for buffer in pair:
            release = getattr(buffer, "freebuffer", None) or getattr(buffer, "close", None)
            if release is not None:
                release()

    def close(self):
        """Free the DMA buffers."""
        for pair in self._buffers.values():
            self._free(pair)
        self._buffers.clear()

    def _wait_idle(self):
        deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
        while not self.ip.read(self.registers["ap_ctrl"]) & AP_IDLE:
            if time.monotonic() > deadline:
                raise SyqError(f"the accelerator did not return to idle within "
                               f"{IDLE_TIMEOUT_SECONDS} s after its output arrived")

    def run_words(self, input_bytes, frames):
        """Run one batch: send `input_bytes` (packed frames), return the received output bytes."""
        send, receive = self._buffer_pair(frames)
        send[:] = input_bytes
        send.flush()
        self.ip.write(self.registers["frames"], frames)
        self.dma.recvchannel.transfer(receive)
        self.dma.sendchannel.transfer(send)
        self.ip.write(self.registers["ap_ctrl"], AP_START)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        self._wait_idle()
        receive.invalidate()
        return np.array(receive, dtype=np.uint8)

    def run_stream(self, codes):
        """Run input streams (frames, elements) of integer codes; return raw outputs and seconds.

        The seconds count the DMA transfers and the accelerator, not the packing.
        """
        codes = np.asarray(codes, dtype=np.int64)
        outputs, busy = [], 0.0
        for start in range(0, len(codes), self.batch_size):
            batch = codes[start:start + self.batch_size]
            data = words_to_bytes(self.interface.pack_inputs(batch), self.interface.axi_input_bits)
            started = time.perf_counter()
            received = self.run_words(data, len(batch))
            busy += time.perf_counter() - started
            words = bytes_to_words(received, self.interface.axi_output_bits)
            outputs.append(self.interface.unpack_outputs(words))
        if not outputs:
            return np.zeros((0, self.interface.output_frame_elements), np.int64), busy
        return np.concatenate(outputs), busy

    def classify(self, images):
        """Quantize `images`, run them and return a Result with labels and post-processed scores."""
        started = time.perf_counter()
        codes = preprocess.input_codes(self.config["input"], images)
        raw, busy = self.run_stream(codes)
        scores = preprocess.post_process(self.config["post"], raw)
        return Result(raw, scores, time.perf_counter() - started, busy)

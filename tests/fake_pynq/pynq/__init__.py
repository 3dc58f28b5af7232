"""Test stand-in for the PYNQ package: an overlay whose AXI DMA feeds the C-simulation testbench.

It provides the parts of the PYNQ 2.x/3.x API that syq's board runtime uses:

* ``Overlay(bitfile)``: requires the .bit file and a .hwh file beside it. Its ``ip_dict`` lists
  the accelerator's registers as PYNQ reads them from the .hwh. Its attributes are the
  accelerator (an IP with ``read``/``write`` of 32-bit registers) and the AXI DMA
  (``sendchannel`` and ``recvchannel`` with ``transfer`` and ``wait``);
* ``allocate(shape, dtype)``: numpy arrays with ``flush``, ``invalidate`` and ``freebuffer``.

The hardware behind it is the compiled testbench named by FAKE_PYNQ_TESTBENCH. When the receive
channel is awaited, the bytes of the send transfer go to a word file, the testbench runs on them,
and its output words become the receive buffer's content once the buffer is invalidated. The
stand-in enforces the contract of the real hardware and raises RuntimeError otherwise: registers
at their offsets, ``frames`` written before ``ap_start``, both transfers started before the wait,
buffers flushed before sending, the testbench's frame count equal to ``frames``, and an output
that fills the receive buffer exactly (a shorter one never completes the S2MM transfer, a longer
one overflows it).

Environment: FAKE_PYNQ_TESTBENCH (required to run frames), FAKE_PYNQ_AXI_BITS ("64,64": input
and output AXI widths), FAKE_PYNQ_ACCELERATOR and FAKE_PYNQ_DMA (IP names, default syq_top_0 and
axi_dma_0), FAKE_PYNQ_FRAMES_OFFSET (default 0x10), FAKE_PYNQ_REGISTER_MAP ("0" leaves the
registers out of ip_dict, as an .hwh without a register map would).
"""

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
CONTROL_OFFSET = 0x00

#: Counters the tests read: testbench runs and DMA transfers.
statistics = {"testbench_runs": 0, "send_transfers": 0, "receive_transfers": 0}


class PynqBuffer(np.ndarray):
    """A DMA buffer: tracks whether the CPU's writes were flushed and hides device writes until
    invalidate(), like a cached buffer."""

    def __array_finalize__(self, obj):
        self.flushed = getattr(obj, "flushed", False)
        self.device_data = getattr(obj, "device_data", None)
        self.freed = getattr(obj, "freed", False)

    def __setitem__(self, key, value):
        self.flushed = False
        super().__setitem__(key, value)

    def flush(self):
        self.flushed = True

    def invalidate(self):
        if self.device_data is not None:
            np.ndarray.__setitem__(self, slice(None), self.device_data)
            self.device_data = None

    def freebuffer(self):
        self.freed = True

    @property
    def physical_address(self):
        return 0x1000_0000


def allocate(shape, dtype=np.uint32, **kwargs):
    """Return a zero-filled DMA buffer."""
    return np.zeros(shape, dtype=dtype).view(PynqBuffer)


def _axi_bits():
    text = os.environ.get("FAKE_PYNQ_AXI_BITS", "64,64")
    input_bits, output_bits = (int(value) for value in text.split(","))
    return input_bits, output_bits


def _to_word_file(data, bits, path):
    word_bytes, limbs = bits // 8, -(-bits // 64)
    words = np.zeros((len(data) // word_bytes, limbs * 8), dtype=np.uint8)
    words[:, :word_bytes] = np.asarray(data, dtype=np.uint8).reshape(-1, word_bytes)
    Path(path).write_bytes(words.tobytes())


def _from_word_file(path, bits):
    word_bytes, limbs = bits // 8, -(-bits // 64)
    words = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8).reshape(-1, limbs * 8)
    return words[:, :word_bytes].reshape(-1)


class _Hardware:
    """The accelerator with its AXI DMA: register file, stream transfers, the testbench run."""

    def __init__(self, frames_offset):
        self.frames_offset = frames_offset
        self.registers = {CONTROL_OFFSET: AP_IDLE, frames_offset: 0}
        self.started_frames = None
        self.send_buffer = None
        self.receive_buffer = None

    def write(self, offset, value):
        if offset not in self.registers:
            raise RuntimeError(f"write to 0x{offset:02x}, which is no register of the accelerator")
        if offset == CONTROL_OFFSET:
            if not value & AP_START:
                raise RuntimeError(f"write of 0x{value:x} to ap_ctrl without ap_start")
            if self.registers[self.frames_offset] == 0:
                raise RuntimeError("ap_start with frames = 0: the accelerator would do nothing")
            self.started_frames = self.registers[self.frames_offset]
            self.registers[CONTROL_OFFSET] = AP_START
        else:
            self.registers[offset] = int(value) & 0xFFFF_FFFF

    def read(self, offset):
        if offset not in self.registers:
            raise RuntimeError(f"read of 0x{offset:02x}, which is no register of the accelerator")
        value = self.registers[offset]
        if offset == CONTROL_OFFSET:
            self.registers[offset] &= ~AP_DONE  # ap_done clears on read
        return value

    def run(self):
        """Run the frames of the send buffer through the testbench into the receive buffer."""
        if self.started_frames is None:
            raise RuntimeError("DMA wait before ap_start: the accelerator never consumes the data")
        if self.send_buffer is None or self.receive_buffer is None:
            raise RuntimeError("receive wait without both a send and a receive transfer")
        executable = os.environ.get("FAKE_PYNQ_TESTBENCH")
        if not executable:
            raise RuntimeError("FAKE_PYNQ_TESTBENCH is not set")
        input_bits, output_bits = _axi_bits()
        with tempfile.TemporaryDirectory(prefix="fake-pynq-") as folder:
            input_path, output_path = Path(folder) / "input.bin", Path(folder) / "output.bin"
            _to_word_file(np.asarray(self.send_buffer), input_bits, input_path)
            result = subprocess.run([executable, str(input_path), str(output_path)],
                                    capture_output=True, text=True)
            statistics["testbench_runs"] += 1
            if result.returncode != 0:
                raise RuntimeError(f"testbench failed: {result.stderr.strip() or result.stdout.strip()}")
            frames = int(result.stdout.split("frames")[1].split()[0])
            if frames != self.started_frames:
                raise RuntimeError(f"the DMA sent {frames} frames, the frames register says "
                                   f"{self.started_frames}")
            output = _from_word_file(output_path, output_bits)
        if len(output) != len(self.receive_buffer):
            raise RuntimeError(f"the accelerator wrote {len(output)} bytes ending with TLAST into "
                               f"a {len(self.receive_buffer)}-byte receive transfer")
        self.receive_buffer.device_data = output.copy()
        self.registers[CONTROL_OFFSET] = AP_IDLE | AP_DONE
        self.started_frames = None
        self.send_buffer = self.receive_buffer = None


class _Channel:
    def __init__(self, hardware, direction):
        self.hardware = hardware
        self.direction = direction
        self.pending = False

    def transfer(self, array, start=0, nbytes=0):
        if not isinstance(array, PynqBuffer) or array.freed:
            raise RuntimeError("DMA transfer of an array that pynq.allocate did not return (or freed)")
        if start or nbytes:
            raise RuntimeError("partial transfers are not modelled")
        if self.direction == "send":
            if not array.flushed:
                raise RuntimeError("MM2S transfer of a buffer whose CPU writes were not flushed")
            self.hardware.send_buffer = array
            statistics["send_transfers"] += 1
        else:
            self.hardware.receive_buffer = array
            statistics["receive_transfers"] += 1
        self.pending = True

    def wait(self):
        if not self.pending:
            raise RuntimeError(f"{self.direction}channel.wait() without a transfer")
        if self.direction == "recv":
            self.hardware.run()
        self.pending = False


class _DMA:
    def __init__(self, hardware):
        self.sendchannel = _Channel(hardware, "send")
        self.recvchannel = _Channel(hardware, "recv")


class _AcceleratorIP:
    def __init__(self, hardware):
        self.hardware = hardware

    def write(self, offset, value):
        self.hardware.write(offset, value)

    def read(self, offset):
        return self.hardware.read(offset)


class Overlay:
    """An overlay with one accelerator and one AXI DMA, backed by the C-simulation testbench."""

    def __init__(self, bitfile, download=True):
        bitfile = Path(bitfile)
        if not bitfile.is_file():
            raise IOError(f"bitstream file {bitfile} does not exist")
        if not bitfile.with_suffix(".hwh").is_file():
            raise RuntimeError(f"no hardware handoff {bitfile.with_suffix('.hwh')} beside the bitstream")
        frames_offset = int(os.environ.get("FAKE_PYNQ_FRAMES_OFFSET", "0x10"), 0)
        self._hardware = _Hardware(frames_offset)
        accelerator = os.environ.get("FAKE_PYNQ_ACCELERATOR", "syq_top_0")
        dma = os.environ.get("FAKE_PYNQ_DMA", "axi_dma_0")
        registers = {}
        if os.environ.get("FAKE_PYNQ_REGISTER_MAP", "1") != "0":
            registers = {"CTRL": {"address_offset": CONTROL_OFFSET, "size": 32, "access": "read-write"},
                         "frames": {"address_offset": frames_offset, "size": 32, "access": "write-only"}}
        self.ip_dict = {accelerator: {"type": "syq.dev:hls:syq_top:1.0", "registers": registers},
                        dma: {"type": "xilinx.com:ip:axi_dma:7.1", "registers": {}}}
        setattr(self, accelerator, _AcceleratorIP(self._hardware))
        setattr(self, dma, _DMA(self._hardware))

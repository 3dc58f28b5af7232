"""Board definitions: FPGA part, default clock, resource budget and processing-system details.

Resource counts are the totals of each device (AMD/Xilinx product tables); BRAM is counted in
18 Kbit halves. The accelerator may use `budget_fraction` of them, leaving room for the DMA, the
interconnect and place-and-route slack.
"""

import dataclasses

from syq.errors import SyqError


@dataclasses.dataclass(frozen=True)
class Board:
    """One PYNQ/Zynq board."""

    name: str
    part: str
    family: str  # "zynq7" (Zynq-7000) or "zynqmp" (Zynq UltraScale+)
    clock_mhz: float
    luts: int
    flip_flops: int
    bram18: int
    dsps: int
    uram: int = 0
    dma_width: int = 64  # data width of the PS high-performance port in bits
    board_part: str = ""  # Vivado board-file part, when the board files are commonly installed
    budget_fraction: float = 0.7

    @property
    def clock_period_ns(self):
        """Return the clock period in ns."""
        return 1000.0 / self.clock_mhz

    def budget(self):
        """Return the resources the accelerator may use: dict of LUT, BRAM18 and DSP counts."""
        return {"lut": int(self.luts * self.budget_fraction),
                "bram18": int(self.bram18 * self.budget_fraction),
                "dsp": int(self.dsps * self.budget_fraction)}


BOARDS = {
    "pynq-z1": Board("pynq-z1", "xc7z020clg400-1", "zynq7", 100.0, 53200, 106400, 280, 220,
                     board_part="www.digilentinc.com:pynq-z1:part0:1.0"),
    "pynq-z2": Board("pynq-z2", "xc7z020clg400-1", "zynq7", 100.0, 53200, 106400, 280, 220,
                     board_part="tul.com.tw:pynq-z2:part0:1.0"),
    "ultra96-v2": Board("ultra96-v2", "xczu3eg-sbva484-1-i", "zynqmp", 100.0, 70560, 141120, 432,
                        360, dma_width=128, board_part="avnet.com:ultra96v2:part0:1.2"),
    "zcu104": Board("zcu104", "xczu7ev-ffvc1156-2-e", "zynqmp", 100.0, 230400, 460800, 624, 1728,
                    uram=96, dma_width=128, board_part="xilinx.com:zcu104:part0:1.1"),
    "kv260": Board("kv260", "xck26-sfvc784-2LV-c", "zynqmp", 100.0, 117120, 234240, 288, 1248,
                   uram=64, dma_width=128, board_part="xilinx.com:kv260_som:part0:1.3"),
}
DEFAULT_BOARD = "pynq-z2"


def get_board(name, clock_mhz=None):
    """Return board `name`, optionally with another clock; raise SyqError for unknown names."""
    key = (name or DEFAULT_BOARD).lower()
    if key not in BOARDS:
        raise SyqError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)}")
    board = BOARDS[key]
    if clock_mhz is not None:
        if not 1.0 <= clock_mhz <= 800.0:
            raise SyqError(f"invalid clock {clock_mhz} MHz: choose 1 to 800 MHz")
        board = dataclasses.replace(board, clock_mhz=float(clock_mhz))
    return board

"""Board definitions: FPGA part, default clock, resource budget and processing-system details.

Resource counts are the totals of each device (AMD/Xilinx product tables); BRAM is counted in
18 Kbit halves. The accelerator may use `budget_fraction` of them, leaving room for the DMA, the
interconnect and place-and-route slack.

`ProcessingSystem` describes the PS block of the Vivado block design: which IP, which
configuration parameters enable the AXI ports and the PL clock, and the names of its pins and
address segments. Names follow the Vivado IP catalog: `processing_system7` 5.5 (Zynq-7000) and
`zynq_ultra_ps_e` 3.x (Zynq UltraScale+).
"""

import dataclasses

from syq.errors import SyqError


@dataclasses.dataclass(frozen=True)
class ProcessingSystem:
    """The processing-system IP of a Zynq family as the block-design script configures it."""

    ip_name: str  # IP catalog name; the script picks the newest installed version
    automation_rule: str  # apply_bd_automation rule that applies the board preset
    master_port: str  # AXI master for the AXI-lite control registers (the PS's GP port)
    master_clock_pin: str
    hp_port: str  # AXI slave the DMA masters write and read DDR through
    hp_clock_pin: str
    hp_memory_map: str  # name of hp_port's memory map in address-segment paths
    hp_ddr_segments: tuple  # address segments of the DDR behind hp_port
    pl_clock_pin: str
    pl_reset_pin: str
    data_space: str  # the PS's master address space
    control_base: int  # first address of the AXI-lite apertures in data_space
    address_bits: int  # DMA address width: PYNQ buffers may lie anywhere the PS addresses
    external_interfaces: tuple = ()  # PS interfaces the automation rule makes ports (DDR, MIO)

    def configuration(self, clock_mhz, hp_width):
        """Return the CONFIG.* properties that enable the ports and set the PL clock in MHz."""
        clock = f"{clock_mhz:g}"
        if self.ip_name == "processing_system7":
            return {"CONFIG.PCW_USE_M_AXI_GP0": "1",
                    "CONFIG.PCW_USE_S_AXI_HP0": "1",
                    "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH": str(hp_width),
                    "CONFIG.PCW_EN_CLK0_PORT": "1",
                    "CONFIG.PCW_EN_RST0_PORT": "1",
                    "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ": clock}
        # M_AXI_HPM0_FPD is "GP0", M_AXI_HPM1_FPD "GP1", M_AXI_HPM0_LPD "GP2" and S_AXI_HP0_FPD
        # "SAXIGP2" in the parameter names. Board presets enable HPM1 as well: it is switched
        # off because an enabled master without a clock fails validation.
        return {"CONFIG.PSU__USE__M_AXI_GP0": "1",
                "CONFIG.PSU__MAXIGP0__DATA_WIDTH": "32",
                "CONFIG.PSU__USE__M_AXI_GP1": "0",
                "CONFIG.PSU__USE__M_AXI_GP2": "0",
                "CONFIG.PSU__USE__S_AXI_GP2": "1",
                "CONFIG.PSU__SAXIGP2__DATA_WIDTH": str(hp_width),
                "CONFIG.PSU__FPGA_PL0_ENABLE": "1",
                "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": clock}


PROCESSING_SYSTEMS = {
    "zynq7": ProcessingSystem(
        ip_name="processing_system7", automation_rule="xilinx.com:bd_rule:processing_system7",
        master_port="M_AXI_GP0", master_clock_pin="M_AXI_GP0_ACLK",
        hp_port="S_AXI_HP0", hp_clock_pin="S_AXI_HP0_ACLK", hp_memory_map="S_AXI_HP0",
        hp_ddr_segments=("HP0_DDR_LOWOCM",),
        pl_clock_pin="FCLK_CLK0", pl_reset_pin="FCLK_RESET0_N", data_space="Data",
        control_base=0x4000_0000, address_bits=32, external_interfaces=("DDR", "FIXED_IO")),
    "zynqmp": ProcessingSystem(
        ip_name="zynq_ultra_ps_e", automation_rule="xilinx.com:bd_rule:zynq_ultra_ps_e",
        master_port="M_AXI_HPM0_FPD", master_clock_pin="maxihpm0_fpd_aclk",
        hp_port="S_AXI_HP0_FPD", hp_clock_pin="saxihp0_fpd_aclk", hp_memory_map="SAXIGP2",
        hp_ddr_segments=("HP0_DDR_LOW", "HP0_DDR_HIGH"),
        pl_clock_pin="pl_clk0", pl_reset_pin="pl_resetn0", data_space="Data",
        control_base=0xA000_0000, address_bits=64),
}


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

    @property
    def processing_system(self):
        """Return the ProcessingSystem of the board's Zynq family."""
        return PROCESSING_SYSTEMS[self.family]

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

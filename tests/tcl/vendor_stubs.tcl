# Stand-ins for the Vitis HLS, Vivado HLS and Vivado Tcl commands that syq's generated scripts use.
#
# Every stand-in checks the shape of its arguments (known options only, required options present,
# values of the right form) and the state it depends on (objects created earlier), appends the
# call to the file named by SYQ_STUB_LOG, and raises an error starting with "stub:" otherwise.
# They synthesize nothing:
#   - csim_design and cosim_design run the compiled C-simulation testbench named by
#     SYQ_STUB_TESTBENCH (when set) with the -argv words, so the data files must exist;
#   - csynth_design copies *_csynth.xml / csynth.xml from SYQ_STUB_REPORTS into syn/report,
#     cosim_design copies *_cosim.rpt into sim/report;
#   - export_design writes impl/ip/component.xml with the stream widths of src/top.hpp and a
#     driver header with the Vitis HLS register offsets;
#   - Vivado keeps a model of the block design (cells, pins, nets, address map), checks it in
#     validate_bd_design, and its runs write placeholder .bit and .hwh files.
# The IP descriptions below (ports, CONFIG parameters, which ports a parameter enables) follow the
# Vivado IP catalog for the few IPs the scripts instantiate, in the subset the scripts touch.

namespace eval stub {}

proc stub::fail {message} {
  error "stub: $message"
}

proc stub::record {command arguments} {
  if {[info exists ::env(SYQ_STUB_LOG)]} {
    set log [open $::env(SYQ_STUB_LOG) a]
    puts $log [list $command {*}$arguments]
    close $log
  }
}

# Parses `arguments` of `command` against `spec`, a dict of option -> "flag" or "value".
# Returns {options positional}: options maps each given option to its value (1 for flags).
proc stub::parse {command spec arguments {min 0} {max -1}} {
  stub::record $command $arguments
  set options [dict create]
  set positional {}
  for {set i 0} {$i < [llength $arguments]} {incr i} {
    set word [lindex $arguments $i]
    if {[string match -* $word] && ![string is double -strict $word]} {
      if {![dict exists $spec $word]} {
        stub::fail "$command: unknown option $word"
      }
      if {[dict get $spec $word] eq "flag"} {
        dict set options $word 1
      } else {
        incr i
        if {$i >= [llength $arguments]} {
          stub::fail "$command: option $word needs a value"
        }
        dict set options $word [lindex $arguments $i]
      }
    } else {
      lappend positional $word
    }
  }
  if {[llength $positional] < $min || ($max >= 0 && [llength $positional] > $max)} {
    stub::fail "$command: expected $min to $max positional arguments, got [llength $positional]: $positional"
  }
  return [list $options $positional]
}

proc stub::require_option {command options name} {
  if {![dict exists $options $name]} {
    stub::fail "$command: option $name is required"
  }
  return [dict get $options $name]
}

proc stub::check_identifier {command value} {
  if {![regexp {^[A-Za-z_][A-Za-z0-9_]*$} $value]} {
    stub::fail "$command: '$value' is not an identifier"
  }
}

proc stub::check_part {command part} {
  # Part names as in the Vivado part list: family-device, package, speed grade (and temperature).
  if {![regexp {^x[a-z]{1,3}[0-9][a-z0-9]*(-[A-Za-z0-9]+)+$} $part]} {
    stub::fail "$command: '$part' is not an AMD/Xilinx part name"
  }
}

# ---- Vitis HLS / Vivado HLS ------------------------------------------------------------------

namespace eval stub::hls {
  variable project ""
  variable solution ""
  variable top ""
  variable sources {}
  variable testbenches {}
  variable part ""
  variable clock ""
  variable synthesized 0
}

proc stub::hls::require {command what} {
  variable project
  variable solution
  variable top
  variable sources
  variable testbenches
  variable part
  variable clock
  variable synthesized
  switch -- $what {
    project { if {$project eq ""} { stub::fail "$command before open_project" } }
    solution { if {$solution eq ""} { stub::fail "$command before open_solution" } }
    top { if {$top eq ""} { stub::fail "$command before set_top" } }
    sources { if {[llength $sources] == 0} { stub::fail "$command without design sources (add_files)" } }
    testbench { if {[llength $testbenches] == 0} { stub::fail "$command without a testbench (add_files -tb)" } }
    part { if {$part eq ""} { stub::fail "$command before set_part" } }
    clock { if {$clock eq ""} { stub::fail "$command before create_clock" } }
    synthesized { if {!$synthesized} { stub::fail "$command before csynth_design" } }
  }
}

proc stub::hls::solution_dir {} {
  variable project
  variable solution
  return [file join [pwd] $project $solution]
}

proc open_project {args} {
  lassign [stub::parse open_project {-reset flag -upgrade flag} $args 1 1] options positional
  set name [lindex $positional 0]
  stub::check_identifier open_project $name
  file mkdir $name
  set stub::hls::project $name
  set stub::hls::solution ""
}

proc set_top {args} {
  lassign [stub::parse set_top {} $args 1 1] options positional
  stub::hls::require set_top project
  stub::check_identifier set_top [lindex $positional 0]
  set stub::hls::top [lindex $positional 0]
}

proc add_files {args} {
  if {[info exists stub::vivado::project] && $stub::vivado::project ne ""} {
    return [stub::vivado::add_files {*}$args]
  }
  lassign [stub::parse add_files {-tb flag -cflags value -csimflags value -blackbox value} $args 1] \
      options positional
  stub::hls::require add_files project
  foreach path $positional {
    if {![file isfile $path]} {
      stub::fail "add_files: $path does not exist"
    }
  }
  if {[dict exists $options -cflags]} {
    foreach flag [dict get $options -cflags] {
      if {[string match -I* $flag] && ![file isdirectory [string range $flag 2 end]]} {
        stub::fail "add_files: include folder [string range $flag 2 end] does not exist"
      }
    }
  }
  if {[dict exists $options -tb]} {
    lappend stub::hls::testbenches {*}$positional
  } else {
    lappend stub::hls::sources {*}$positional
  }
}

proc open_solution {args} {
  lassign [stub::parse open_solution {-reset flag -flow_target value} $args 1 1] options positional
  stub::hls::require open_solution project
  if {[dict exists $options -flow_target] && [lsearch -exact {vivado vitis} [dict get $options -flow_target]] < 0} {
    stub::fail "open_solution: -flow_target must be vivado or vitis"
  }
  stub::check_identifier open_solution [lindex $positional 0]
  set stub::hls::solution [lindex $positional 0]
  file mkdir [stub::hls::solution_dir]
}

proc set_part {args} {
  lassign [stub::parse set_part {-tool value} $args 1 1] options positional
  stub::hls::require set_part solution
  stub::check_part set_part [lindex $positional 0]
  set stub::hls::part [lindex $positional 0]
}

proc create_clock {args} {
  lassign [stub::parse create_clock {-period value -name value} $args 0 0] options positional
  stub::hls::require create_clock solution
  set period [stub::require_option create_clock $options -period]
  if {![string is double -strict $period] || $period <= 0} {
    stub::fail "create_clock: -period '$period' is not a positive number of ns"
  }
  set stub::hls::clock $period
}

# Runs the testbench on the words of `argv_string`: INPUT OUTPUT EXPECTED.
proc stub::hls::run_testbench {command argv_string} {
  set words [regexp -all -inline {\S+} $argv_string]
  if {[llength $words] != 3} {
    stub::fail "$command: -argv must hold INPUT OUTPUT EXPECTED, got '$argv_string'"
  }
  lassign $words input output expected
  foreach path [list $input $expected] {
    if {![file isfile $path]} {
      stub::fail "$command: testbench data $path does not exist"
    }
  }
  if {![file isdirectory [file dirname $output]]} {
    stub::fail "$command: output folder [file dirname $output] does not exist"
  }
  if {[info exists ::env(SYQ_STUB_TESTBENCH)]} {
    if {[catch {exec $::env(SYQ_STUB_TESTBENCH) {*}$words 2>@1} result]} {
      stub::fail "$command: testbench failed: $result"
    }
    puts $result
  }
}

proc stub::hls::copy_reports {pattern target} {
  if {![info exists ::env(SYQ_STUB_REPORTS)]} {
    return
  }
  file mkdir $target
  foreach path [glob -nocomplain -directory $::env(SYQ_STUB_REPORTS) $pattern] {
    file copy -force $path $target
  }
}

proc csim_design {args} {
  lassign [stub::parse csim_design {-argv value -clean flag -O flag -ldflags value -mflags value
                                    -setup flag -compiler value} $args 0 0] options positional
  foreach what {solution top sources testbench} {
    stub::hls::require csim_design $what
  }
  if {[dict exists $options -argv]} {
    stub::hls::run_testbench csim_design [dict get $options -argv]
  }
}

proc csynth_design {args} {
  lassign [stub::parse csynth_design {-dump_cfg flag -dump_post_cfg flag -synthesis_check flag} $args 0 0] \
      options positional
  foreach what {solution top sources part clock} {
    stub::hls::require csynth_design $what
  }
  stub::hls::copy_reports *csynth.xml [file join [stub::hls::solution_dir] syn report]
  set stub::hls::synthesized 1
}

proc cosim_design {args} {
  lassign [stub::parse cosim_design {-argv value -rtl value -tool value -trace_level value -O flag
                                     -ldflags value -wave_debug flag -setup flag} $args 0 0] \
      options positional
  stub::hls::require cosim_design synthesized
  stub::hls::require cosim_design testbench
  if {[dict exists $options -rtl] && [lsearch -exact {verilog vhdl} [dict get $options -rtl]] < 0} {
    stub::fail "cosim_design: -rtl must be verilog or vhdl"
  }
  if {[dict exists $options -trace_level] &&
      [lsearch -exact {none all port port_hier} [dict get $options -trace_level]] < 0} {
    stub::fail "cosim_design: invalid -trace_level"
  }
  if {[dict exists $options -argv]} {
    stub::hls::run_testbench cosim_design [dict get $options -argv]
  }
  stub::hls::copy_reports *_cosim.rpt [file join [stub::hls::solution_dir] sim report]
}

proc export_design {args} {
  lassign [stub::parse export_design {-format value -rtl value -vendor value -library value
                                      -version value -display_name value -description value
                                      -taxonomy value -ipname value -output value -flow value
                                      -evaluate value} $args 0 0] options positional
  stub::hls::require export_design synthesized
  set format [stub::require_option export_design $options -format]
  if {[lsearch -exact {ip_catalog syn_dcp sysgen xo} $format] < 0} {
    stub::fail "export_design: unknown -format $format"
  }
  if {[dict exists $options -rtl] && [lsearch -exact {verilog vhdl} [dict get $options -rtl]] < 0} {
    stub::fail "export_design: -rtl must be verilog or vhdl"
  }
  set vendor [expr {[dict exists $options -vendor] ? [dict get $options -vendor] : "xilinx.com"}]
  set library [expr {[dict exists $options -library] ? [dict get $options -library] : "hls"}]
  set version [expr {[dict exists $options -version] ? [dict get $options -version] : "1.0"}]
  if {![regexp {^[a-z0-9][a-z0-9.-]*$} $vendor] || ![regexp {^[a-z0-9_]+$} $library]} {
    stub::fail "export_design: invalid -vendor '$vendor' or -library '$library'"
  }
  if {![regexp {^[0-9]+\.[0-9]+$} $version]} {
    stub::fail "export_design: -version '$version' is not MAJOR.MINOR"
  }
  # Stream widths as the C++ top declares them.
  set header [file join [file dirname [lindex $stub::hls::sources 0]] top.hpp]
  set text [read [set handle [open $header]]][close $handle]
  if {![regexp {kAxiInputBits = ([0-9]+)} $text -> input_bits] ||
      ![regexp {kAxiOutputBits = ([0-9]+)} $text -> output_bits]} {
    stub::fail "export_design: $header declares no kAxiInputBits/kAxiOutputBits"
  }
  set top $stub::hls::top
  set ip [file join [stub::hls::solution_dir] impl ip]
  file mkdir $ip
  set xml [open [file join $ip component.xml] w]
  puts $xml "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
  puts $xml "<!-- Written by the syq test stand-in of export_design, not by Vitis HLS. -->"
  puts $xml "<spirit:component xmlns:spirit=\"http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009\">"
  puts $xml "  <spirit:vendor>$vendor</spirit:vendor>"
  puts $xml "  <spirit:library>$library</spirit:library>"
  puts $xml "  <spirit:name>$top</spirit:name>"
  puts $xml "  <spirit:version>$version</spirit:version>"
  puts $xml "  <stub-stream name=\"in_r\" mode=\"Slave\" bytes=\"[expr {$input_bits / 8}]\"/>"
  puts $xml "  <stub-stream name=\"out_r\" mode=\"Master\" bytes=\"[expr {$output_bits / 8}]\"/>"
  puts $xml "</spirit:component>"
  close $xml
  set upper [string toupper $top]
  set drivers [file join $ip drivers ${top}_v1_0 src]
  file mkdir $drivers
  set driver [open [file join $drivers x${top}_hw.h] w]
  puts $driver "// Written by the syq test stand-in of export_design, not by Vitis HLS."
  puts $driver "#define X${upper}_CONTROL_ADDR_AP_CTRL     0x00"
  puts $driver "#define X${upper}_CONTROL_ADDR_GIE         0x04"
  puts $driver "#define X${upper}_CONTROL_ADDR_IER         0x08"
  puts $driver "#define X${upper}_CONTROL_ADDR_ISR         0x0c"
  puts $driver "#define X${upper}_CONTROL_ADDR_FRAMES_DATA 0x10"
  puts $driver "#define X${upper}_CONTROL_BITS_FRAMES_DATA 32"
  close $driver
}

# ---- Vivado ----------------------------------------------------------------------------------

namespace eval stub::vivado {
  variable project ""
  variable project_dir ""
  variable part ""
  variable board_part ""
  variable ip_repo_paths {}
  variable user_ips [dict create]
  variable design ""
  variable cells [dict create]
  variable connected_intf [dict create]
  variable net_driver [dict create]
  variable connected_pins [dict create]
  variable external [dict create]
  variable assignments {}
  variable validated 0
  variable saved 0
  variable wrapper ""
  variable top ""
  variable runs [dict create]
}

# IP definitions: VLNV versions in the catalog, CONFIG parameters with a check (a list of allowed
# values, or "number", "integer"), interface pins {name mode kind ?enabled?}, plain pins
# {name direction type ?enabled?}, master address spaces {name master-interface} and slave
# segments {name slave-interface}. "enabled" is a Tcl expression over [cfg PARAMETER].
set stub::vivado::catalog [dict create \
  processing_system7 [dict create \
    versions {5.5} \
    parameters {
      PCW_USE_M_AXI_GP0 {0 1} PCW_USE_S_AXI_HP0 {0 1} PCW_S_AXI_HP0_DATA_WIDTH {32 64}
      PCW_EN_CLK0_PORT {0 1} PCW_EN_RST0_PORT {0 1} PCW_FPGA0_PERIPHERAL_FREQMHZ number
    } \
    defaults {PCW_USE_M_AXI_GP0 1 PCW_USE_S_AXI_HP0 0 PCW_EN_CLK0_PORT 1 PCW_EN_RST0_PORT 1} \
    interfaces {
      {M_AXI_GP0 Master aximm {[cfg PCW_USE_M_AXI_GP0] == 1}}
      {S_AXI_HP0 Slave aximm {[cfg PCW_USE_S_AXI_HP0] == 1}}
      {DDR Master ddr} {FIXED_IO Master fixedio}
    } \
    pins {
      {FCLK_CLK0 O clk {[cfg PCW_EN_CLK0_PORT] == 1}}
      {FCLK_RESET0_N O rst {[cfg PCW_EN_RST0_PORT] == 1}}
      {M_AXI_GP0_ACLK I clk {[cfg PCW_USE_M_AXI_GP0] == 1}}
      {S_AXI_HP0_ACLK I clk {[cfg PCW_USE_S_AXI_HP0] == 1}}
    } \
    spaces {{Data M_AXI_GP0}} \
    segments {{S_AXI_HP0/HP0_DDR_LOWOCM S_AXI_HP0}} \
    automation xilinx.com:bd_rule:processing_system7 \
    preset {} \
    must_be_external {DDR FIXED_IO}] \
  zynq_ultra_ps_e [dict create \
    versions {3.3 3.4 3.5} \
    parameters {
      PSU__USE__M_AXI_GP0 {0 1} PSU__USE__M_AXI_GP1 {0 1} PSU__USE__M_AXI_GP2 {0 1}
      PSU__USE__S_AXI_GP2 {0 1} PSU__MAXIGP0__DATA_WIDTH {32 64 128}
      PSU__SAXIGP2__DATA_WIDTH {32 64 128} PSU__FPGA_PL0_ENABLE {0 1}
      PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ number
    } \
    defaults {PSU__USE__M_AXI_GP0 1 PSU__USE__M_AXI_GP1 1 PSU__USE__M_AXI_GP2 0 PSU__USE__S_AXI_GP2 0
              PSU__FPGA_PL0_ENABLE 1} \
    interfaces {
      {M_AXI_HPM0_FPD Master aximm {[cfg PSU__USE__M_AXI_GP0] == 1}}
      {M_AXI_HPM1_FPD Master aximm {[cfg PSU__USE__M_AXI_GP1] == 1}}
      {M_AXI_HPM0_LPD Master aximm {[cfg PSU__USE__M_AXI_GP2] == 1}}
      {S_AXI_HP0_FPD Slave aximm {[cfg PSU__USE__S_AXI_GP2] == 1}}
    } \
    pins {
      {pl_clk0 O clk {[cfg PSU__FPGA_PL0_ENABLE] == 1}}
      {pl_resetn0 O rst {[cfg PSU__FPGA_PL0_ENABLE] == 1}}
      {maxihpm0_fpd_aclk I clk {[cfg PSU__USE__M_AXI_GP0] == 1}}
      {maxihpm1_fpd_aclk I clk {[cfg PSU__USE__M_AXI_GP1] == 1}}
      {maxihpm0_lpd_aclk I clk {[cfg PSU__USE__M_AXI_GP2] == 1}}
      {saxihp0_fpd_aclk I clk {[cfg PSU__USE__S_AXI_GP2] == 1}}
    } \
    spaces {{Data M_AXI_HPM0_FPD}} \
    segments {{SAXIGP2/HP0_DDR_LOW S_AXI_HP0_FPD} {SAXIGP2/HP0_DDR_HIGH S_AXI_HP0_FPD}} \
    automation xilinx.com:bd_rule:zynq_ultra_ps_e \
    preset {PSU__USE__M_AXI_GP1 1} \
    must_be_external {}] \
  axi_dma [dict create \
    versions {7.1} \
    parameters {
      c_include_sg {0 1} c_sg_length_width integer c_addr_width integer
      c_m_axi_mm2s_data_width {32 64 128 256 512 1024} c_m_axis_mm2s_tdata_width {8 16 32 64 128 256 512 1024}
      c_m_axi_s2mm_data_width {32 64 128 256 512 1024} c_s_axis_s2mm_tdata_width {8 16 32 64 128 256 512 1024}
      c_mm2s_burst_size {2 4 8 16 32 64 128 256} c_s2mm_burst_size {2 4 8 16 32 64 128 256}
    } \
    defaults {c_include_sg 1 c_sg_length_width 14 c_addr_width 32 c_m_axi_mm2s_data_width 32
              c_m_axis_mm2s_tdata_width 32 c_m_axi_s2mm_data_width 32 c_s_axis_s2mm_tdata_width 32
              c_mm2s_burst_size 16 c_s2mm_burst_size 16} \
    interfaces {
      {S_AXI_LITE Slave aximm} {M_AXI_MM2S Master aximm} {M_AXI_S2MM Master aximm}
      {M_AXI_SG Master aximm {[cfg c_include_sg] == 1}}
      {M_AXIS_MM2S Master axis} {S_AXIS_S2MM Slave axis}
    } \
    pins {
      {s_axi_lite_aclk I clk} {m_axi_mm2s_aclk I clk} {m_axi_s2mm_aclk I clk}
      {m_axi_sg_aclk I clk {[cfg c_include_sg] == 1}} {axi_resetn I rst}
      {mm2s_introut O intr} {s2mm_introut O intr}
    } \
    spaces {{Data_MM2S M_AXI_MM2S} {Data_S2MM M_AXI_S2MM}} \
    segments {{S_AXI_LITE/Reg S_AXI_LITE}} \
    stream_bytes {M_AXIS_MM2S c_m_axis_mm2s_tdata_width S_AXIS_S2MM c_s_axis_s2mm_tdata_width}] \
  axi_interconnect [dict create \
    versions {2.1} \
    parameters {NUM_SI integer NUM_MI integer} \
    defaults {NUM_SI 1 NUM_MI 1} \
    interfaces {
      {S00_AXI Slave aximm} {S01_AXI Slave aximm {[cfg NUM_SI] >= 2}}
      {M00_AXI Master aximm} {M01_AXI Master aximm {[cfg NUM_MI] >= 2}}
      {M02_AXI Master aximm {[cfg NUM_MI] >= 3}}
    } \
    pins {
      {ACLK I clk} {ARESETN I rst} {S00_ACLK I clk} {S00_ARESETN I rst}
      {S01_ACLK I clk {[cfg NUM_SI] >= 2}} {S01_ARESETN I rst {[cfg NUM_SI] >= 2}}
      {M00_ACLK I clk} {M00_ARESETN I rst}
      {M01_ACLK I clk {[cfg NUM_MI] >= 2}} {M01_ARESETN I rst {[cfg NUM_MI] >= 2}}
      {M02_ACLK I clk {[cfg NUM_MI] >= 3}} {M02_ARESETN I rst {[cfg NUM_MI] >= 3}}
    } \
    interconnect 1] \
  smartconnect [dict create \
    versions {1.0} \
    parameters {NUM_SI integer NUM_MI integer} \
    defaults {NUM_SI 1 NUM_MI 1} \
    interfaces {
      {S00_AXI Slave aximm} {S01_AXI Slave aximm {[cfg NUM_SI] >= 2}}
      {S02_AXI Slave aximm {[cfg NUM_SI] >= 3}}
      {M00_AXI Master aximm} {M01_AXI Master aximm {[cfg NUM_MI] >= 2}}
    } \
    pins {{aclk I clk} {aresetn I rst}} \
    interconnect 1] \
  proc_sys_reset [dict create \
    versions {5.0} \
    parameters {} \
    defaults {} \
    interfaces {} \
    pins {
      {slowest_sync_clk I clk} {ext_reset_in I rst} {aux_reset_in I rst optional}
      {mb_debug_sys_rst I rst optional} {dcm_locked I data optional}
      {peripheral_aresetn O rst} {interconnect_aresetn O rst} {peripheral_reset O rst}
      {mb_reset O rst} {bus_struct_reset O rst}
    }] \
]

proc stub::vivado::require {command what} {
  variable project
  variable design
  switch -- $what {
    project { if {$project eq ""} { stub::fail "$command before create_project" } }
    design { if {$design eq ""} { stub::fail "$command before create_bd_design" } }
  }
}

proc stub::vivado::installed_board_parts {} {
  if {[info exists ::env(SYQ_STUB_BOARD_PARTS)]} {
    return $::env(SYQ_STUB_BOARD_PARTS)
  }
  return {}
}

# Returns the catalog entry of an IP name; HLS IPs registered from an IP repository included.
proc stub::vivado::definition {name} {
  variable catalog
  variable user_ips
  if {[dict exists $catalog $name]} {
    return [dict get $catalog $name]
  }
  return [dict get $user_ips $name]
}

proc stub::vivado::all_vlnvs {} {
  variable catalog
  variable user_ips
  set vlnvs {}
  dict for {name definition} $catalog {
    foreach version [dict get $definition versions] {
      lappend vlnvs xilinx.com:ip:$name:$version
    }
  }
  dict for {name definition} $user_ips {
    lappend vlnvs [dict get $definition vlnv]
  }
  return $vlnvs
}

proc create_project {args} {
  lassign [stub::parse create_project {-force flag -part value -in_memory flag} $args 2 2] options positional
  lassign $positional name folder
  stub::check_identifier create_project $name
  stub::check_part create_project [stub::require_option create_project $options -part]
  if {[file exists $folder] && [llength [glob -nocomplain -directory $folder *]] &&
      ![dict exists $options -force]} {
    stub::fail "create_project: $folder is not empty and -force is missing"
  }
  file mkdir $folder
  set stub::vivado::project $name
  set stub::vivado::project_dir [file normalize $folder]
  set stub::vivado::part [dict get $options -part]
  return $name
}

proc current_project {args} {
  lassign [stub::parse current_project {-quiet flag} $args 0 0] options positional
  stub::vivado::require current_project project
  return $stub::vivado::project
}

proc current_fileset {args} {
  lassign [stub::parse current_fileset {-simset flag -constrset flag} $args 0 0] options positional
  stub::vivado::require current_fileset project
  return sources_1
}

proc get_board_parts {args} {
  lassign [stub::parse get_board_parts {-quiet flag -latest_file_version flag -filter value} $args 0 1] \
      options positional
  set found {}
  foreach board_part [stub::vivado::installed_board_parts] {
    if {[llength $positional] == 0 || [string match [lindex $positional 0] $board_part]} {
      lappend found $board_part
    }
  }
  return $found
}

proc update_ip_catalog {args} {
  lassign [stub::parse update_ip_catalog {-rebuild flag -scan_changes flag} $args 0 0] options positional
  stub::vivado::require update_ip_catalog project
  foreach repo $stub::vivado::ip_repo_paths {
    set path [file join $repo component.xml]
    if {![file isfile $path]} {
      continue
    }
    set text [read [set handle [open $path]]][close $handle]
    foreach field {vendor library name version} {
      if {![regexp "<spirit:$field>(\[^<\]+)</spirit:$field>" $text -> value]} {
        stub::fail "update_ip_catalog: $path has no spirit:$field"
      }
      set $field $value
    }
    set interfaces {{s_axi_control Slave aximm}}
    set stream_bytes {}
    foreach {- stream mode bytes} [regexp -all -inline {<stub-stream name="(\w+)" mode="(\w+)" bytes="(\d+)"/>} $text] {
      lappend interfaces [list $stream $mode axis]
      lappend stream_bytes $stream $bytes
    }
    dict set stub::vivado::user_ips $name [dict create \
      vlnv $vendor:$library:$name:$version versions {} parameters {} defaults {} \
      interfaces $interfaces pins {{ap_clk I clk} {ap_rst_n I rst} {interrupt O intr}} \
      segments {{s_axi_control/Reg s_axi_control}} fixed_stream_bytes $stream_bytes]
  }
}

# Matches a Vivado -filter expression of clauses "PROPERTY op value" joined by &&, with op one of
# ==, != and =~ (glob), against the property getter `getter` of `object`.
proc stub::vivado::filter_matches {command expression getter object} {
  foreach clause [split [string map {&& \x01} $expression] \x01] {
    if {![regexp {^\s*([A-Za-z_.]+)\s*(==|!=|=~)\s*(.*)$} $clause -> property op value]} {
      stub::fail "$command: unsupported -filter clause '$clause'"
    }
    set value [string trim [string trim $value] \"]
    set actual [$getter $object $property]
    switch -- $op {
      == { set ok [expr {$actual eq $value}] }
      != { set ok [expr {$actual ne $value}] }
      =~ { set ok [string match $value $actual] }
    }
    if {!$ok} {
      return 0
    }
  }
  return 1
}

proc stub::vivado::ipdef_property {vlnv property} {
  switch -- $property {
    VLNV { return $vlnv }
    NAME { return [lindex [split $vlnv :] 2] }
    default { stub::fail "get_ipdefs: unknown property $property in -filter" }
  }
}

proc get_ipdefs {args} {
  lassign [stub::parse get_ipdefs {-quiet flag -all flag -filter value} $args 0 1] options positional
  stub::vivado::require get_ipdefs project
  set found {}
  foreach vlnv [stub::vivado::all_vlnvs] {
    if {[llength $positional] && ![string match [lindex $positional 0] $vlnv]} {
      continue
    }
    if {[dict exists $options -filter] &&
        ![stub::vivado::filter_matches get_ipdefs [dict get $options -filter] stub::vivado::ipdef_property $vlnv]} {
      continue
    }
    lappend found $vlnv
  }
  return $found
}

proc create_bd_design {args} {
  lassign [stub::parse create_bd_design {-dir value} $args 1 1] options positional
  stub::vivado::require create_bd_design project
  stub::check_identifier create_bd_design [lindex $positional 0]
  set stub::vivado::design [lindex $positional 0]
  return [lindex $positional 0]
}

proc stub::vivado::cell_name {command object} {
  variable cells
  set name [string trimleft $object /]
  if {![dict exists $cells $name]} {
    stub::fail "$command: no block-design cell $object"
  }
  return $name
}

# Returns the value of CONFIG.<parameter> of `cell` (for the "enabled" expressions).
proc stub::vivado::config_value {cell parameter} {
  variable cells
  return [dict get $cells $cell config $parameter]
}

proc stub::vivado::enabled {cell condition} {
  if {$condition eq "" || $condition eq "optional"} {
    return 1
  }
  proc ::stub::vivado::cfg {parameter} "stub::vivado::config_value $cell \$parameter"
  return [expr $condition]
}

proc create_bd_cell {args} {
  lassign [stub::parse create_bd_cell {-type value -vlnv value -reference value} $args 1 1] options positional
  stub::vivado::require create_bd_cell design
  if {[stub::require_option create_bd_cell $options -type] ne "ip"} {
    stub::fail "create_bd_cell: only -type ip is used"
  }
  set vlnv [stub::require_option create_bd_cell $options -vlnv]
  if {[lsearch -exact [stub::vivado::all_vlnvs] $vlnv] < 0} {
    stub::fail "create_bd_cell: $vlnv is not in the IP catalog"
  }
  set name [lindex $positional 0]
  stub::check_identifier create_bd_cell $name
  if {[dict exists $stub::vivado::cells $name]} {
    stub::fail "create_bd_cell: cell $name exists already"
  }
  set ip [lindex [split $vlnv :] 2]
  set definition [stub::vivado::definition $ip]
  dict set stub::vivado::cells $name [dict create ip $ip vlnv $vlnv config [dict get $definition defaults]]
  return /$name
}

proc stub::vivado::ip_definition {cell} {
  variable cells
  return [stub::vivado::definition [dict get $cells $cell ip]]
}

proc stub::vivado::set_config {command cell parameter value} {
  variable cells
  set definition [stub::vivado::ip_definition $cell]
  set allowed [dict get $definition parameters]
  if {![dict exists $allowed $parameter]} {
    stub::fail "$command: [dict get $cells $cell ip] has no parameter CONFIG.$parameter"
  }
  set check [dict get $allowed $parameter]
  if {$check eq "number"} {
    set ok [string is double -strict $value]
  } elseif {$check eq "integer"} {
    set ok [string is integer -strict $value]
  } else {
    set ok [expr {[lsearch -exact $check $value] >= 0}]
  }
  if {!$ok} {
    stub::fail "$command: invalid value '$value' for CONFIG.$parameter of $cell (allowed: $check)"
  }
  dict set cells $cell config $parameter $value
}

proc set_property {args} {
  lassign [stub::parse set_property {-dict value -quiet flag} $args 1 3] options positional
  if {[dict exists $options -dict]} {
    if {[llength $positional] != 1} {
      stub::fail "set_property -dict: expected one object list"
    }
    set pairs [dict get $options -dict]
    set objects [lindex $positional 0]
  } else {
    if {[llength $positional] != 3} {
      stub::fail "set_property: expected NAME VALUE OBJECTS"
    }
    lassign $positional name value objects
    set pairs [list $name $value]
  }
  if {[llength $pairs] % 2} {
    stub::fail "set_property: odd name/value list '$pairs'"
  }
  if {[llength $objects] == 0} {
    stub::fail "set_property: no objects"
  }
  foreach object $objects {
    foreach {name value} $pairs {
      stub::vivado::set_one_property $object $name $value
    }
  }
}

proc stub::vivado::set_one_property {object name value} {
  variable project
  variable cells
  if {$object eq $project && $project ne ""} {
    switch -- $name {
      board_part {
        if {[lsearch -exact [installed_board_parts] $value] < 0} {
          stub::fail "set_property board_part: $value is not installed"
        }
        set stub::vivado::board_part $value
      }
      ip_repo_paths {
        foreach path $value {
          if {![file isdirectory $path]} {
            stub::fail "set_property ip_repo_paths: $path is not a folder"
          }
        }
        set stub::vivado::ip_repo_paths $value
      }
      default { stub::fail "set_property: unknown project property $name" }
    }
  } elseif {$object eq "sources_1"} {
    if {$name ne "top"} {
      stub::fail "set_property: unknown fileset property $name"
    }
    if {$value ne $stub::vivado::wrapper} {
      stub::fail "set_property top: $value is not a module of the project (wrapper: '$stub::vivado::wrapper')"
    }
    set stub::vivado::top $value
  } elseif {[dict exists $cells [string trimleft $object /]]} {
    if {![string match CONFIG.* $name]} {
      stub::fail "set_property: cell property $name is not a CONFIG parameter"
    }
    set_config set_property [string trimleft $object /] [string range $name 7 end] $value
  } else {
    stub::fail "set_property: unknown object '$object'"
  }
}

proc apply_bd_automation {args} {
  lassign [stub::parse apply_bd_automation {-rule value -config value -dict value} $args 1 1] options positional
  stub::vivado::require apply_bd_automation design
  set rule [stub::require_option apply_bd_automation $options -rule]
  set config [stub::require_option apply_bd_automation $options -config]
  if {[llength $config] % 2} {
    stub::fail "apply_bd_automation: -config is not a key/value list: $config"
  }
  set cell [stub::vivado::cell_name apply_bd_automation [lindex $positional 0]]
  set definition [stub::vivado::ip_definition $cell]
  if {![dict exists $definition automation] || [dict get $definition automation] ne $rule} {
    stub::fail "apply_bd_automation: rule $rule does not apply to $cell"
  }
  dict for {key value} $config {
    switch -- $key {
      apply_board_preset {
        if {[lsearch -exact {0 1} $value] < 0} {
          stub::fail "apply_bd_automation: apply_board_preset must be 0 or 1"
        }
        if {$value == 1} {
          if {$stub::vivado::board_part eq ""} {
            stub::fail "apply_bd_automation: apply_board_preset 1 without a board_part"
          }
          dict for {parameter preset} [dict get $definition preset] {
            dict set stub::vivado::cells $cell config $parameter $preset
          }
        }
      }
      make_external {
        foreach interface [split [string map {" " ""} $value] ,] {
          if {[lsearch -index 0 [dict get $definition interfaces] $interface] < 0} {
            stub::fail "apply_bd_automation: $cell has no interface $interface"
          }
          dict set stub::vivado::external $cell/$interface 1
        }
      }
      Master - Slave {
        if {$value ne "Disable"} {
          stub::fail "apply_bd_automation: only $key Disable is modelled"
        }
      }
      default { stub::fail "apply_bd_automation: unknown -config key $key" }
    }
  }
}

# Returns the handles of the enabled interface pins (kind "intf") or plain pins (kind "pin").
proc stub::vivado::all_pins {kind} {
  variable cells
  set handles {}
  dict for {cell description} $cells {
    set definition [ip_definition $cell]
    set entries [dict get $definition [expr {$kind eq "intf" ? "interfaces" : "pins"}]]
    foreach entry $entries {
      if {[enabled $cell [lindex $entry 3]]} {
        lappend handles /$cell/[lindex $entry 0]
      }
    }
  }
  return $handles
}

# Returns {cell entry} of a pin handle, or fails.
proc stub::vivado::pin_entry {command kind handle} {
  if {![regexp {^/?([A-Za-z0-9_]+)/([A-Za-z0-9_]+)$} $handle -> cell pin]} {
    stub::fail "$command: '$handle' is not a pin"
  }
  if {[lsearch -exact [all_pins $kind] /$cell/$pin] < 0} {
    stub::fail "$command: no enabled [expr {$kind eq "intf" ? "interface pin" : "pin"}] $handle"
  }
  set definition [ip_definition $cell]
  set entries [dict get $definition [expr {$kind eq "intf" ? "interfaces" : "pins"}]]
  return [list $cell [lindex $entries [lsearch -index 0 $entries $pin]]]
}

proc stub::vivado::stream_bytes {cell pin} {
  variable cells
  set definition [ip_definition $cell]
  if {[dict exists $definition fixed_stream_bytes $pin]} {
    return [dict get $definition fixed_stream_bytes $pin]
  }
  if {[dict exists $definition stream_bytes $pin]} {
    return [expr {[config_value $cell [dict get $definition stream_bytes $pin]] / 8}]
  }
  return ""
}

proc stub::vivado::intf_property {handle property} {
  lassign [pin_entry get_property intf $handle] cell entry
  switch -- $property {
    MODE { return [lindex $entry 1] }
    VLNV {
      return [dict get {aximm xilinx.com:interface:aximm_rtl:1.0 axis xilinx.com:interface:axis_rtl:1.0
                        ddr xilinx.com:interface:ddrx_rtl:1.0
                        fixedio xilinx.com:display_processing_system7:fixedio_rtl:1.0} [lindex $entry 2]]
    }
    CONFIG.TDATA_NUM_BYTES {
      if {[lindex $entry 2] ne "axis"} {
        stub::fail "get_property: $handle is not an AXI-stream interface"
      }
      return [stream_bytes $cell [lindex $entry 0]]
    }
    default { stub::fail "get_property: unknown interface pin property $property" }
  }
}

proc stub::vivado::select_pins {command kind arguments} {
  lassign [stub::parse $command {-quiet flag -of_objects value -filter value -hierarchical flag} $arguments 0 1] \
      options positional
  stub::vivado::require $command design
  set candidates [all_pins $kind]
  if {[dict exists $options -of_objects]} {
    set owners {}
    foreach object [dict get $options -of_objects] {
      lappend owners [cell_name $command $object]
    }
    set selected {}
    foreach handle $candidates {
      if {[lsearch -exact $owners [lindex [split $handle /] 1]] >= 0} {
        lappend selected $handle
      }
    }
    set candidates $selected
  }
  if {[llength $positional]} {
    set pattern /[string trimleft [lindex $positional 0] /]
    set selected {}
    foreach handle $candidates {
      if {[string match $pattern $handle]} {
        lappend selected $handle
      }
    }
    set candidates $selected
  }
  if {[dict exists $options -filter]} {
    if {$kind ne "intf"} {
      stub::fail "$command: -filter is only modelled for interface pins"
    }
    set selected {}
    foreach handle $candidates {
      if {[filter_matches $command [dict get $options -filter] stub::vivado::intf_property $handle]} {
        lappend selected $handle
      }
    }
    set candidates $selected
  }
  return $candidates
}

proc get_bd_intf_pins {args} {
  return [stub::vivado::select_pins get_bd_intf_pins intf $args]
}

proc get_bd_pins {args} {
  return [stub::vivado::select_pins get_bd_pins pin $args]
}

proc get_bd_cells {args} {
  lassign [stub::parse get_bd_cells {-quiet flag -hierarchical flag} $args 0 1] options positional
  set found {}
  foreach cell [dict keys $stub::vivado::cells] {
    if {[llength $positional] == 0 || [string match /[string trimleft [lindex $positional 0] /] /$cell]} {
      lappend found /$cell
    }
  }
  return $found
}

proc get_property {args} {
  lassign [stub::parse get_property {-quiet flag} $args 2 2] options positional
  lassign $positional property object
  if {[llength $object] != 1} {
    stub::fail "get_property: expected one object, got '$object'"
  }
  if {[dict exists $stub::vivado::runs $object]} {
    set run [dict get $stub::vivado::runs $object]
    switch -- $property {
      PROGRESS { return [expr {[dict get $run finished] ? "100%" : "0%"}] }
      STATUS { return [expr {[dict get $run finished] ? "[dict get $run step] Complete!" : "Not started"}] }
      DIRECTORY { return [dict get $run directory] }
      STATS.WNS { return [expr {$object eq "impl_1" ? 0.512 : ""}] }
      default { stub::fail "get_property: unknown run property $property" }
    }
  }
  if {[regexp {^/?[A-Za-z0-9_]+/[A-Za-z0-9_]+$} $object]} {
    return [stub::vivado::intf_property $object $property]
  }
  set cell [stub::vivado::cell_name get_property $object]
  if {![string match CONFIG.* $property]} {
    stub::fail "get_property: unknown cell property $property"
  }
  return [stub::vivado::config_value $cell [string range $property 7 end]]
}

proc connect_bd_intf_net {args} {
  lassign [stub::parse connect_bd_intf_net {-boundary_type value -intf_net value} $args 2 2] options positional
  stub::vivado::require connect_bd_intf_net design
  lassign $positional first second
  foreach handle [list $first $second] {
    if {[llength $handle] != 1} {
      stub::fail "connect_bd_intf_net: expected one interface pin, got '$handle'"
    }
    if {[dict exists $stub::vivado::connected_intf /[string trimleft $handle /]]} {
      stub::fail "connect_bd_intf_net: $handle is connected already"
    }
  }
  lassign [stub::vivado::pin_entry connect_bd_intf_net intf $first] first_cell first_entry
  lassign [stub::vivado::pin_entry connect_bd_intf_net intf $second] second_cell second_entry
  if {[lindex $first_entry 2] ne [lindex $second_entry 2]} {
    stub::fail "connect_bd_intf_net: $first ([lindex $first_entry 2]) and $second ([lindex $second_entry 2]) differ in type"
  }
  if {[lsort [list [lindex $first_entry 1] [lindex $second_entry 1]]] ne {Master Slave}} {
    stub::fail "connect_bd_intf_net: $first and $second are not one master and one slave"
  }
  if {[lindex $first_entry 2] eq "axis"} {
    set first_bytes [stub::vivado::stream_bytes $first_cell [lindex $first_entry 0]]
    set second_bytes [stub::vivado::stream_bytes $second_cell [lindex $second_entry 0]]
    if {$first_bytes != $second_bytes} {
      stub::fail "connect_bd_intf_net: $first has $first_bytes-byte TDATA, $second $second_bytes bytes"
    }
  }
  dict set stub::vivado::connected_intf /[string trimleft $first /] /[string trimleft $second /]
  dict set stub::vivado::connected_intf /[string trimleft $second /] /[string trimleft $first /]
}

proc connect_bd_net {args} {
  lassign [stub::parse connect_bd_net {-net value} $args 2] options positional
  stub::vivado::require connect_bd_net design
  set driver ""
  set type ""
  set loads {}
  foreach handle $positional {
    if {[llength $handle] != 1} {
      stub::fail "connect_bd_net: expected one pin per argument, got '$handle'"
    }
    lassign [stub::vivado::pin_entry connect_bd_net pin $handle] cell entry
    set handle /[string trimleft $handle /]
    if {$type eq ""} {
      set type [lindex $entry 2]
    } elseif {$type ne [lindex $entry 2]} {
      stub::fail "connect_bd_net: $handle is a [lindex $entry 2] pin on a $type net"
    }
    if {[lindex $entry 1] eq "O"} {
      if {$driver ne ""} {
        stub::fail "connect_bd_net: two drivers $driver and $handle"
      }
      set driver $handle
    } else {
      if {[dict exists $stub::vivado::connected_pins $handle]} {
        stub::fail "connect_bd_net: input $handle is driven already"
      }
      lappend loads $handle
    }
  }
  if {$driver eq "" || [llength $loads] == 0} {
    stub::fail "connect_bd_net: a net needs one output pin and at least one input pin"
  }
  foreach load $loads {
    dict set stub::vivado::connected_pins $load $driver
  }
  dict set stub::vivado::net_driver $driver 1
}

# Address spaces are "/cell/space", segments "/cell/map/segment".
proc stub::vivado::all_spaces {} {
  variable cells
  set handles {}
  dict for {cell description} $cells {
    set definition [ip_definition $cell]
    if {[dict exists $definition spaces]} {
      foreach entry [dict get $definition spaces] {
        lappend handles /$cell/[lindex $entry 0]
      }
    }
  }
  return $handles
}

proc stub::vivado::all_segments {} {
  variable cells
  set handles {}
  dict for {cell description} $cells {
    set definition [ip_definition $cell]
    if {[dict exists $definition segments]} {
      foreach entry [dict get $definition segments] {
        if {[lsearch -exact [all_pins intf] /$cell/[lindex $entry 1]] >= 0} {
          lappend handles /$cell/[lindex $entry 0]
        }
      }
    }
  }
  return $handles
}

proc get_bd_addr_spaces {args} {
  lassign [stub::parse get_bd_addr_spaces {-quiet flag -of_objects value} $args 0 1] options positional
  set found {}
  foreach handle [stub::vivado::all_spaces] {
    if {[llength $positional] == 0 || [string match /[string trimleft [lindex $positional 0] /] $handle]} {
      lappend found $handle
    }
  }
  return $found
}

proc get_bd_addr_segs {args} {
  lassign [stub::parse get_bd_addr_segs {-quiet flag -of_objects value -excluded flag} $args 0 1] options positional
  set found {}
  foreach handle [stub::vivado::all_segments] {
    if {[llength $positional] == 0 || [string match /[string trimleft [lindex $positional 0] /] $handle]} {
      lappend found $handle
    }
  }
  return $found
}

proc stub::vivado::parse_size {command value} {
  if {[regexp {^0[xX][0-9a-fA-F]+$} $value]} {
    return [expr {$value}]
  }
  if {[regexp {^([0-9]+)([KMG]?)$} $value -> number unit]} {
    return [expr {$number * [dict get {"" 1 K 1024 M 1048576 G 1073741824} $unit]}]
  }
  stub::fail "$command: '$value' is not an address or size"
}

proc assign_bd_address {args} {
  lassign [stub::parse assign_bd_address {-target_address_space value -offset value -range value
                                          -force flag -boundary flag -external flag} $args 0 1] \
      options positional
  stub::vivado::require assign_bd_address design
  if {[llength $positional] == 0} {
    stub::fail "assign_bd_address: name the segments to assign (assigning everything is not modelled)"
  }
  set space [stub::require_option assign_bd_address $options -target_address_space]
  if {[llength $space] != 1 || [lsearch -exact [stub::vivado::all_spaces] $space] < 0} {
    stub::fail "assign_bd_address: '$space' is not one address space"
  }
  set segments [lindex $positional 0]
  if {[llength $segments] == 0} {
    stub::fail "assign_bd_address: no segment (get_bd_addr_segs found nothing)"
  }
  set offset ""
  set range ""
  if {[dict exists $options -offset] != [dict exists $options -range]} {
    stub::fail "assign_bd_address: give -offset and -range together"
  }
  if {[dict exists $options -offset]} {
    set offset [stub::vivado::parse_size assign_bd_address [dict get $options -offset]]
    set range [stub::vivado::parse_size assign_bd_address [dict get $options -range]]
    if {$range & ($range - 1) || $offset % $range} {
      stub::fail "assign_bd_address: range $range is not a power of two or offset $offset is not aligned to it"
    }
  }
  foreach segment $segments {
    if {[lsearch -exact [stub::vivado::all_segments] $segment] < 0} {
      stub::fail "assign_bd_address: no enabled address segment $segment"
    }
    if {![stub::vivado::reachable $space $segment]} {
      stub::fail "assign_bd_address: $segment is not connected to the master of $space"
    }
    foreach assignment $stub::vivado::assignments {
      lassign $assignment other_space other_segment other_offset other_range
      if {$other_space eq $space && $other_segment eq $segment} {
        stub::fail "assign_bd_address: $segment is assigned in $space already"
      }
      if {$other_space eq $space && $offset ne "" && $other_offset ne "" &&
          $offset < $other_offset + $other_range && $other_offset < $offset + $range} {
        stub::fail "assign_bd_address: $segment overlaps $other_segment in $space"
      }
    }
    lappend stub::vivado::assignments [list $space $segment $offset $range]
  }
}

# Returns whether the slave interface behind `segment` can be reached from the master interface of
# `space`, following interface connections and passing through interconnect cells.
proc stub::vivado::reachable {space segment} {
  variable connected_intf
  lassign [split [string trimleft $space /] /] space_cell space_name
  set definition [ip_definition $space_cell]
  set start /$space_cell/[lindex [lsearch -inline -index 0 [dict get $definition spaces] $space_name] 1]
  set segment_cell [lindex [split [string trimleft $segment /] /] 0]
  set segment_path [join [lrange [split [string trimleft $segment /] /] 1 end] /]
  set segment_definition [ip_definition $segment_cell]
  set target /$segment_cell/[lindex [lsearch -inline -index 0 [dict get $segment_definition segments] $segment_path] 1]
  set queue [list $start]
  set seen [dict create $start 1]
  while {[llength $queue]} {
    set handle [lindex $queue 0]
    set queue [lrange $queue 1 end]
    if {$handle eq $target} {
      return 1
    }
    set next {}
    if {[dict exists $connected_intf $handle]} {
      set peer [dict get $connected_intf $handle]
      lappend next $peer
      set peer_cell [lindex [split $peer /] 1]
      if {[dict exists [ip_definition $peer_cell] interconnect]} {
        foreach other [all_pins intf] {
          if {[lindex [split $other /] 1] eq $peer_cell} {
            lappend next $other
          }
        }
      }
    }
    foreach candidate $next {
      if {![dict exists $seen $candidate]} {
        dict set seen $candidate 1
        lappend queue $candidate
      }
    }
  }
  return 0
}

proc validate_bd_design {args} {
  lassign [stub::parse validate_bd_design {-force flag} $args 0 0] options positional
  stub::vivado::require validate_bd_design design
  # Every enabled clock and reset input is driven, except optional ones.
  dict for {cell description} $stub::vivado::cells {
    set definition [stub::vivado::ip_definition $cell]
    foreach entry [dict get $definition pins] {
      lassign $entry pin direction type condition
      if {$direction eq "I" && $condition ne "optional" && [stub::vivado::enabled $cell $condition] &&
          ![dict exists $stub::vivado::connected_pins /$cell/$pin]} {
        stub::fail "validate_bd_design: input $type pin /$cell/$pin is not connected"
      }
    }
    # Every enabled AXI interface of the PL cells is connected; the PS's must be connected or external.
    foreach entry [dict get $definition interfaces] {
      lassign $entry pin mode kind condition
      set handle /$cell/$pin
      if {![stub::vivado::enabled $cell $condition]} {
        continue
      }
      if {[dict exists $definition must_be_external] && [lsearch -exact [dict get $definition must_be_external] $pin] >= 0} {
        if {![dict exists $stub::vivado::external $cell/$pin]} {
          stub::fail "validate_bd_design: $handle must be made external"
        }
        continue
      }
      if {![dict exists $stub::vivado::connected_intf $handle]} {
        stub::fail "validate_bd_design: interface $handle is not connected"
      }
    }
  }
  # Every slave segment of a PL cell and every master address space has an assignment.
  set assigned_segments {}
  set used_spaces {}
  foreach assignment $stub::vivado::assignments {
    lappend used_spaces [lindex $assignment 0]
    lappend assigned_segments [lindex $assignment 1]
  }
  foreach segment [stub::vivado::all_segments] {
    set cell [lindex [split $segment /] 1]
    if {![dict exists [stub::vivado::ip_definition $cell] automation] &&
        [lsearch -exact $assigned_segments $segment] < 0} {
      stub::fail "validate_bd_design: address segment $segment is not assigned"
    }
  }
  foreach space [stub::vivado::all_spaces] {
    if {[lsearch -exact $used_spaces $space] < 0} {
      stub::fail "validate_bd_design: address space $space has no assigned segment"
    }
  }
  set stub::vivado::validated 1
}

proc save_bd_design {args} {
  lassign [stub::parse save_bd_design {} $args 0 0] options positional
  stub::vivado::require save_bd_design design
  set stub::vivado::saved 1
}

proc stub::vivado::bd_file {} {
  variable project_dir
  variable project
  variable design
  return [file join $project_dir $project.srcs sources_1 bd $design $design.bd]
}

proc get_files {args} {
  lassign [stub::parse get_files {-quiet flag -of_objects value -filter value} $args 0 1] options positional
  stub::vivado::require get_files project
  set found {}
  if {$stub::vivado::design ne "" && $stub::vivado::saved &&
      ([llength $positional] == 0 || [string match *[lindex $positional 0] [stub::vivado::bd_file]])} {
    lappend found [stub::vivado::bd_file]
  }
  return $found
}

proc generate_target {args} {
  lassign [stub::parse generate_target {-force flag -quiet flag} $args 2 2] options positional
  lassign $positional targets files
  if {$targets ne "all"} {
    stub::fail "generate_target: only the target 'all' is used"
  }
  if {$files ne [stub::vivado::bd_file]} {
    stub::fail "generate_target: '$files' is not the block-design file"
  }
  if {!$stub::vivado::validated} {
    stub::fail "generate_target: the block design was not validated"
  }
  # The hardware handoff, as Vivado 2020.2 and later place it.
  set design $stub::vivado::design
  set handoff [file join $stub::vivado::project_dir $stub::vivado::project.gen sources_1 bd $design hw_handoff]
  file mkdir $handoff
  set file [open [file join $handoff $design.hwh] w]
  puts $file "<!-- placeholder hardware handoff written by the syq test stand-in -->"
  close $file
}

proc make_wrapper {args} {
  lassign [stub::parse make_wrapper {-files value -top flag -import flag -fileset value} $args 0 0] \
      options positional
  if {[stub::require_option make_wrapper $options -files] ne [stub::vivado::bd_file]} {
    stub::fail "make_wrapper: -files is not the block-design file"
  }
  if {![dict exists $options -top]} {
    stub::fail "make_wrapper: -top is missing, the wrapper would not be a top module"
  }
  if {!$stub::vivado::saved} {
    stub::fail "make_wrapper: the block design was not saved"
  }
  set stub::vivado::wrapper ${stub::vivado::design}_wrapper
  return [file join $stub::vivado::project_dir ${stub::vivado::design}_wrapper.v]
}

proc stub::vivado::add_files {args} {
  lassign [stub::parse add_files {-norecurse flag -fileset value} $args 1] options positional
  foreach path $positional {
    if {![file exists $path]} {
      stub::fail "add_files: $path does not exist"
    }
  }
}

proc update_compile_order {args} {
  lassign [stub::parse update_compile_order {-fileset value} $args 0 0] options positional
  stub::vivado::require update_compile_order project
}

proc get_runs {args} {
  lassign [stub::parse get_runs {-quiet flag} $args 1 1] options positional
  set name [lindex $positional 0]
  if {[lsearch -exact {synth_1 impl_1} $name] < 0} {
    stub::fail "get_runs: no run $name"
  }
  return $name
}

proc launch_runs {args} {
  lassign [stub::parse launch_runs {-jobs value -to_step value -next_step flag} $args 1 1] options positional
  set run [lindex $positional 0]
  if {[lsearch -exact {synth_1 impl_1} $run] < 0} {
    stub::fail "launch_runs: no run $run"
  }
  if {[dict exists $options -jobs] && (![string is integer -strict [dict get $options -jobs]] ||
                                       [dict get $options -jobs] < 1)} {
    stub::fail "launch_runs: -jobs must be a positive integer"
  }
  if {$stub::vivado::top eq ""} {
    stub::fail "launch_runs: no top module set"
  }
  set step [expr {$run eq "synth_1" ? "synth_design" : "route_design"}]
  if {$run eq "impl_1"} {
    if {![dict exists $stub::vivado::runs synth_1] || ![dict get $stub::vivado::runs synth_1 finished]} {
      stub::fail "launch_runs: impl_1 before synth_1 finished"
    }
    if {[dict exists $options -to_step]} {
      set step [dict get $options -to_step]
      if {[lsearch -exact {opt_design place_design route_design write_bitstream} $step] < 0} {
        stub::fail "launch_runs: unknown -to_step $step"
      }
    }
  }
  set directory [file join $stub::vivado::project_dir $stub::vivado::project.runs $run]
  file mkdir $directory
  dict set stub::vivado::runs $run [dict create directory $directory step $step finished 0]
}

proc wait_on_run {args} {
  lassign [stub::parse wait_on_run {-timeout value} $args 1 1] options positional
  set run [lindex $positional 0]
  if {![dict exists $stub::vivado::runs $run]} {
    stub::fail "wait_on_run: $run was not launched"
  }
  dict set stub::vivado::runs $run finished 1
  if {$run eq "impl_1" && [dict get $stub::vivado::runs $run step] eq "write_bitstream"} {
    set file [open [file join [dict get $stub::vivado::runs $run directory] $stub::vivado::top.bit] w]
    puts $file "placeholder bitstream written by the syq test stand-in"
    close $file
  }
}

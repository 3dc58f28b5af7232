# Runs a generated script under tclsh with the vendor stand-ins, the way the tool would run it:
#   tclsh run_with_stubs.tcl vitis_hls|vivado_hls -f SCRIPT [-tclargs ARGS...]
#   tclsh run_with_stubs.tcl vivado -mode batch [-notrace] [-log F] [-journal F] -source SCRIPT [-tclargs ARGS...]
# The exit code is the script's own `exit` code, or 3 when the script raises an error (an unknown
# command, a failed stand-in check); the error is printed as an "ERROR:" line like the tools do.

set tool [lindex $argv 0]
set rest [lrange $argv 1 end]
set script ""
set script_args {}
for {set i 0} {$i < [llength $rest]} {incr i} {
  set word [lindex $rest $i]
  switch -- $word {
    -f - -source {
      set script [lindex $rest [incr i]]
    }
    -tclargs {
      set script_args [lrange $rest [expr {$i + 1}] end]
      break
    }
    -mode {
      if {[lindex $rest [incr i]] ne "batch"} {
        puts stderr "run_with_stubs: only -mode batch is supported"
        exit 4
      }
    }
    -log - -journal {
      incr i
    }
    -notrace - -nojournal - -nolog {}
    default {
      puts stderr "run_with_stubs: unknown $tool option $word"
      exit 4
    }
  }
}
if {$script eq "" || ![file isfile $script]} {
  puts stderr "run_with_stubs: no script given or '$script' not found"
  exit 4
}

source [file join [file dirname [file normalize [info script]]] vendor_stubs.tcl]
set ::argv $script_args
set ::argc [llength $script_args]
set ::argv0 $script
if {[catch {source $script} message]} {
  puts "ERROR: $message"
  puts stderr $::errorInfo
  exit 3
}
exit 0

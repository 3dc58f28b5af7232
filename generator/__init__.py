"""From QONNX to hardware: lowering, golden model, folding, estimates, HLS emitter and C-simulation."""

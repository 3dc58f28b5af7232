"""Board definitions, Vivado block-design templates and the PYNQ driver."""

"""Board-side runtime of a syq accelerator: runs on PYNQ with numpy and pynq, without syq.

`syq bitstream` copies this package into the deploy folder as ``syq_runtime`` together with
generated modules: ``packing.py`` and ``errors.py`` (copies of syq's own) and ``interface.py``
(the Interface class of syq's emitter), so inputs are packed and outputs unpacked by the same code
as in syq's C-simulation. ``pynq`` is imported only when an overlay is loaded.
"""

"""SYQ training: quantizers, reference networks, datasets, the training loop and QONNX export."""

import os
import warnings

# Brevitas' custom quantizers cannot be scripted, and export needs the JIT off anyway.
os.environ.setdefault("BREVITAS_JIT", "0")
# Brevitas 0.13 warns at import time about an optional CUDA-only package.
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

"""C++ HLS library headers and jinja2 templates of a generated project (package data)."""

from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parent / "include"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

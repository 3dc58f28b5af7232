"""Compilation of the C++ test programs in tests/cpp (jinja2 templates) for the HLS tests."""

from pathlib import Path

import jinja2

from syq.generator.cpp_build import compile_program
from syq.hls import INCLUDE_DIR

CPP_DIR = Path(__file__).resolve().parent / "cpp"


def build_root(request, tmp_path_factory):
    """Return the folder for cached test builds: pytest's cache when available."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("syq-hls-builds"))
    return tmp_path_factory.mktemp("syq-hls-builds")


def build_test_program(template_name, context, root, defines=()):
    """Render a tests/cpp template and compile it with -Werror and `-D` for each of `defines`;
    return the executable path."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(CPP_DIR),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = environment.get_template(template_name).render(**context)
    variant = "".join(f"-{define.lower()}" for define in defines)
    source = root / "sources" / (template_name.removesuffix(".cpp.j2") + variant + ".cpp")
    source.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    return compile_program([source], [INCLUDE_DIR, CPP_DIR], root, extra_flags=("-Werror", *(f"-D{define}" for define in defines)))

"""generator/cpp_build.py: locating headers and compiler, cached builds, and failing builds."""

import importlib.util
import logging
import shutil
import subprocess

import pytest

from syq.errors import SyqError
from syq.generator import cpp_build

HELLO = '#include "message.h"\n#include <cstdio>\nint main() { std::puts(MESSAGE); return 0; }\n'
BROKEN = "int main() { return undefined_name; }\n"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def hello_project(tmp_path):
    """A two-file program: main.cpp includes include/message.h."""
    source = _write(tmp_path / "src" / "main.cpp", HELLO)
    header = _write(tmp_path / "include" / "message.h", '#define MESSAGE "first"\n')
    return source, header


def _run(executable):
    return subprocess.run([str(executable)], capture_output=True, text=True, check=True).stdout.strip()


def test_find_ap_types_returns_header_folder():
    folder = cpp_build.find_ap_types()
    assert (folder / "ap_int.h").is_file()
    assert (folder / "hls_stream.h").is_file()


def test_find_ap_types_without_hls4ml(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "hls4ml" else real_find_spec(name, *args)
    )
    with pytest.raises(SyqError, match=r"pip install hls4ml==1\.3\.0"):
        cpp_build.find_ap_types()


def test_find_compiler_missing(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SyqError, match="g\\+\\+ not found on PATH"):
        cpp_build.find_compiler()


def test_compile_builds_and_runs(hello_project, tmp_path):
    source, header = hello_project
    executable = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    assert executable.parent.name.startswith("build-")
    assert (executable.parent / cpp_build.LOG_NAME).is_file()
    assert _run(executable) == "first"


def test_compile_reuses_cached_build(hello_project, tmp_path, caplog):
    source, header = hello_project
    first = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    modified = first.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="syq.generator.cpp_build"):
        second = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    assert second == first
    assert second.stat().st_mtime_ns == modified
    assert "Reusing C++ build" in caplog.text
    assert len(list((tmp_path / "builds").iterdir())) == 1


def test_compile_rebuilds_when_header_changes(hello_project, tmp_path):
    source, header = hello_project
    first = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    header.write_text('#define MESSAGE "second"\n')
    second = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    assert second != first
    assert _run(second) == "second"


def test_compile_rebuilds_when_flags_change(hello_project, tmp_path):
    source, header = hello_project
    first = cpp_build.compile_program([source], [header.parent], tmp_path / "builds")
    second = cpp_build.compile_program([source], [header.parent], tmp_path / "builds", extra_flags=["-DUNUSED=1"])
    assert second != first


def test_compile_error_names_source_and_log(tmp_path):
    source = _write(tmp_path / "broken.cpp", BROKEN)
    with pytest.raises(SyqError) as raised:
        cpp_build.compile_program([source], [], tmp_path / "builds")
    message = str(raised.value)
    assert "\n" not in message
    assert str(source) in message
    assert "undefined_name" in message
    build_dirs = list((tmp_path / "builds").glob("build-*"))
    assert len(build_dirs) == 1
    log = build_dirs[0] / cpp_build.LOG_NAME
    assert str(log) in message
    assert "undefined_name" in log.read_text()
    assert not (build_dirs[0] / cpp_build.EXECUTABLE_NAME).exists()
    assert [path.name for path in (tmp_path / "builds").iterdir()] == [build_dirs[0].name]


def test_compile_error_in_missing_header(tmp_path):
    source = _write(tmp_path / "main.cpp", '#include "missing.h"\nint main() { return 0; }\n')
    with pytest.raises(SyqError, match="missing.h"):
        cpp_build.compile_program([source], [], tmp_path / "builds")


def test_fixed_source_builds_after_failure(tmp_path):
    source = _write(tmp_path / "main.cpp", BROKEN)
    with pytest.raises(SyqError):
        cpp_build.compile_program([source], [], tmp_path / "builds")
    source.write_text("int main() { return 0; }\n")
    executable = cpp_build.compile_program([source], [], tmp_path / "builds")
    assert executable.is_file()


def test_compile_rejects_missing_source(tmp_path):
    with pytest.raises(SyqError, match="not found"):
        cpp_build.compile_program([tmp_path / "absent.cpp"], [], tmp_path / "builds")


def test_compile_warnings_of_ap_types_headers_are_silenced(tmp_path):
    """-isystem keeps warnings of the vendor headers out of -Werror builds."""
    source = _write(
        tmp_path / "main.cpp",
        "#include <ap_int.h>\n#include <hls_stream.h>\n"
        "int main() { hls::stream<ap_uint<9> > s; s.write(3); return s.read() == 3 ? 0 : 1; }\n",
    )
    executable = cpp_build.compile_program([source], [], tmp_path / "builds", extra_flags=["-Werror"])
    subprocess.run([str(executable)], check=True)


@pytest.mark.parametrize("log, expected", [
    ("top.cpp: In function 'int main()':\ntop.cpp:3:5: error: 'x' was not declared\n",
     "top.cpp:3:5: error: 'x' was not declared"),
    ("g++: internal compiler error: Segmentation fault signal terminated program cc1plus\n",
     "g++: internal compiler error: Segmentation fault signal terminated program cc1plus"),
    ("g++: fatal error: Killed signal terminated program cc1plus\n",
     "g++: fatal error: Killed signal terminated program cc1plus"),
    ("warning only\n", "no error line in the compiler output"),
])
def test_first_error_names_compiler_crashes(log, expected):
    assert cpp_build._first_error(log) == expected

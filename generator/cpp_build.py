"""Compile C-simulation programs with g++ against the open-source Xilinx ap_types headers.

The ap_types headers (`ap_int.h`, `hls_stream.h`, ...) ship inside the hls4ml wheel
(hls4ml/templates/vivado/ap_types) and are used in place, never copied. Builds are cached in
`<output_dir>/build-<hash>/`, where the hash covers the content of every source file and every
header it includes (as listed by `g++ -M`), the compiler flags and the compiler version.
"""

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from syq.errors import SyqError

logger = logging.getLogger(__name__)

#: Flags of every C-simulation build, before the include directories.
BASE_FLAGS = (
    "-std=c++14",
    "-O2",
    "-Wall",
    "-Wno-unknown-pragmas",
    "-Wno-maybe-uninitialized",
    "-Wno-uninitialized",
)

EXECUTABLE_NAME = "program"
LOG_NAME = "build.log"


def find_ap_types():
    """Return the ap_types header folder of the installed hls4ml wheel, without importing hls4ml.

    Raises SyqError when hls4ml is not installed or the folder lacks ap_int.h.
    """
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise SyqError(
            "hls4ml is not installed, so the ap_types headers for C-simulation are missing: "
            "run `pip install hls4ml==1.3.0`"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "templates" / "vivado" / "ap_types"
        if (folder / "ap_int.h").is_file():
            return folder
    raise SyqError(
        f"ap_int.h not found under {list(spec.submodule_search_locations)[0]}/templates/vivado/ap_types: "
        "reinstall with `pip install --force-reinstall hls4ml==1.3.0`"
    )


def find_compiler():
    """Return the path of g++ on PATH, or raise SyqError when it is missing."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise SyqError("g++ not found on PATH: install a C++14 compiler (for example `apt-get install g++`)")
    return Path(compiler)


@functools.lru_cache(maxsize=None)
def _compiler_version(compiler):
    """Return the full `--version` banner of `compiler` (part of the cache key)."""
    try:
        result = subprocess.run([str(compiler), "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise SyqError(f"cannot run {compiler} --version ({error}): check the compiler installation") from error
    return result.stdout


def compile_program(sources, include_dirs, output_dir, extra_flags=()):
    """Compile C++ sources into one executable and return its path, reusing a cached build.

    The flags are BASE_FLAGS, `-isystem <ap_types>`, `-I` for each of `include_dirs` (in order) and
    then `extra_flags`. The executable is `<output_dir>/build-<hash>/program`. A build is compiled in
    a temporary folder and renamed into place, so an interrupted or failed build never leaves a
    partial executable. A failed build keeps only the full compiler output in
    `build-<hash>/build.log` and raises SyqError naming the first failing file.
    """
    sources = [Path(source).resolve() for source in sources]
    if not sources:
        raise SyqError("no C++ sources given to compile_program: pass at least one .cpp file")
    for source in sources:
        if not source.is_file():
            raise SyqError(f"C++ source {source} not found: generate the project first")
    compiler = find_compiler()
    flags = [*BASE_FLAGS, "-isystem", str(find_ap_types())]
    flags += [f"-I{Path(folder).resolve()}" for folder in include_dirs]
    flags += [str(flag) for flag in extra_flags]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    dependencies, scan_log = _list_dependencies(compiler, flags, sources)
    build_hash = _build_hash(compiler, flags, sources, dependencies, scan_log)
    build_dir = output_dir / f"build-{build_hash}"
    executable = build_dir / EXECUTABLE_NAME
    if dependencies is not None and executable.is_file():
        logger.info("Reusing C++ build %s", build_dir)
        return executable

    logger.info("Compiling %s into %s", ", ".join(source.name for source in sources), build_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{build_hash}.", dir=output_dir))
    try:
        if dependencies is None:
            # The preprocessor already failed (for example on a missing header): report its output.
            log, succeeded = scan_log, False
        else:
            command = [str(compiler), *flags, *(str(source) for source in sources), "-o",
                       str(staging / EXECUTABLE_NAME)]
            result = subprocess.run(command, capture_output=True, text=True)
            log = " ".join(command) + "\n" + result.stdout + result.stderr
            succeeded = result.returncode == 0
        (staging / LOG_NAME).write_text(log)
        if not succeeded:
            (staging / EXECUTABLE_NAME).unlink(missing_ok=True)
        _replace_directory(staging, build_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    if not succeeded:
        log_path = build_dir / LOG_NAME
        logger.debug("C++ build failed, full log in %s", log_path)
        names = ", ".join(str(source) for source in sources)
        raise SyqError(f"g++ failed to compile {names} ({_first_error(log)}): see the full log in {log_path}")
    logger.info("Built %s", executable)
    return executable


def _list_dependencies(compiler, flags, sources):
    """Return (sorted list of every file the sources include, None) via `g++ -M`,
    or (None, preprocessor output) when preprocessing fails."""
    files = set()
    for source in sources:
        command = [str(compiler), *flags, "-M", str(source)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            return None, " ".join(command) + "\n" + result.stdout + result.stderr
        files.update(_parse_make_rule(result.stdout))
    return sorted(files), None


def _parse_make_rule(text):
    """Return the prerequisites of a Makefile rule printed by `g++ -M` (escaped spaces allowed)."""
    joined = text.replace("\\\n", " ")
    _, _, prerequisites = joined.partition(": ")
    marker = "\0"
    tokens = prerequisites.replace("\\ ", marker).split()
    return [Path(token.replace(marker, " ")).resolve() for token in tokens]


def _build_hash(compiler, flags, sources, dependencies, scan_log):
    digest = hashlib.sha256()
    digest.update(_compiler_version(compiler).encode())
    digest.update("\0".join(flags).encode())
    for path in [*sources, *(dependencies or [])]:
        digest.update(b"\0file\0" + str(path).encode() + b"\0")
        digest.update(path.read_bytes())
    if dependencies is None:
        digest.update(scan_log.encode())
    return digest.hexdigest()[:16]


def _replace_directory(staging, target):
    """Rename `staging` to `target`, replacing an older `target` (for example a failed build)."""
    retired = None
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        try:
            os.rename(target, retired / target.name)
        except FileNotFoundError:
            pass  # another process moved it away meanwhile
    try:
        os.rename(staging, target)
    except OSError:
        # A concurrent build of the same hash won the rename, and its result is equivalent.
        if not (target / EXECUTABLE_NAME).is_file():
            raise
        logger.debug("Concurrent build of %s finished first, discarding %s", target, staging)
        shutil.rmtree(staging, ignore_errors=True)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _first_error(log):
    """Return the first error line of a compiler log ("<file>:<line>:<column>: error: <text>", or
    the compiler's own crash or kill message)."""
    for line in log.splitlines():
        if any(marker in line for marker in (": error:", ": fatal error:", "internal compiler error",
                                             "Killed signal terminated")):
            return line.strip()
    return "no error line in the compiler output"

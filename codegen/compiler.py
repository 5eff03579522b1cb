"""Drive the system C compiler: find it, build libdecoder.so (and the harness).

Failures enter the package here and leave as `CompilerError`: a missing compiler names
what to install; a failed compile carries the compiler's own message.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from neurogrs.settings import SettingsDict
from neurogrs.errors import CompilerError, ConfigError

__all__ = [
    "KERNEL_SETS",
    "BASE_FLAGS",
    "WARN_FLAGS",
    "CompileSettings",
    "find_compiler",
    "compiler_version",
    "compile_library",
    "compile_harness",
    "compile_pyext",
]

BASE_FLAGS = ("-O3", "-std=c99")
WARN_FLAGS = ("-Wall", "-Wextra")
_TIMEOUT_S = 300

# Build-time caps on the kernel sets the generated library may pick at run time: "auto"
# keeps them all (AVX-512F, AVX2+FMA, 4-wide vectors, plain C99; see docs/codegen.md).
KERNEL_SETS = {
    "auto": (),
    "avx2": ("-DNEUROGRS_NO_AVX512",),
    "vector4": ("-DNEUROGRS_NO_AVX512", "-DNEUROGRS_NO_AVX2"),
    "plain": ("-DNEUROGRS_NO_VECTORS",),
}

INSTALL_HINT = (
    "install a C compiler: `apt-get install gcc` (Debian/Ubuntu), `dnf install gcc` "
    "(Fedora), `xcode-select --install` (macOS), or set CC to one"
)


@dataclass(frozen=True)
class CompileSettings(SettingsDict):
    """Compiler flags beyond `-O3 -std=c99 -fPIC`; -march=native only when asked."""

    march_native: bool = False
    werror: bool = False
    extra_flags: tuple[str, ...] = field(default_factory=tuple)
    cc: str | None = None

    def __post_init__(self) -> None:
        for name in ("march_native", "werror"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        flags = tuple(self.extra_flags)
        bad = [f for f in flags if not isinstance(f, str) or not f.startswith("-") or not f.strip()
               or any(ch.isspace() for ch in f)]
        if bad:
            raise ConfigError(f"extra_flags must be single compiler options starting with '-', "
                              f"got {bad!r}")
        object.__setattr__(self, "extra_flags", flags)
        if self.cc is not None and (not isinstance(self.cc, str) or not self.cc.strip()):
            raise ConfigError(f"cc must be a compiler name or path, got {self.cc!r}")

    def flags(self) -> list[str]:
        f = [*BASE_FLAGS, *WARN_FLAGS]
        if self.werror:
            f.append("-Werror")
        if self.march_native:
            f.append("-march=native")
        f.extend(self.extra_flags)
        return f


def find_compiler(cc: str | None = None) -> str:
    """Path of the C compiler: `cc` argument, else $CC, else cc, gcc or clang on PATH."""
    candidates = [cc] if cc else ([os.environ["CC"]] if os.environ.get("CC") else [])
    candidates += ["cc", "gcc", "clang"] if not cc else []
    for name in candidates:
        prog = name.split()[0] if name else ""
        path = shutil.which(prog) if prog else None
        if path:
            return path
    raise CompilerError(f"no C compiler found (looked for {', '.join(candidates)}): {INSTALL_HINT}")


def compiler_version(cc: str) -> str:
    """First line of `cc --version` (part of the C engine's cache key)."""
    try:
        res = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompilerError(f"cannot run {cc}: {exc}; {INSTALL_HINT}") from exc
    return (res.stdout or res.stderr).splitlines()[0].strip() if (res.stdout or res.stderr) else cc


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                             timeout=_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise CompilerError(f"cannot run {cmd[0]}: {exc}; {INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CompilerError(f"compiler took longer than {_TIMEOUT_S} s: {' '.join(cmd)}") from exc
    except OSError as exc:
        raise CompilerError(f"cannot run {cmd[0]}: {exc}") from exc
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-30:])
        raise CompilerError(f"compiling failed ({' '.join(cmd)}):\n{tail}")


def compile_library(src_dir: str | os.PathLike, options: CompileSettings | None = None,
                    output: str = "libdecoder.so") -> Path:
    """cc -O3 -std=c99 -fPIC -shared decoder.c -lm -o src_dir/libdecoder.so."""
    options = options or CompileSettings()
    d = Path(src_dir)
    cc = find_compiler(options.cc)
    _run([cc, *options.flags(), "-fPIC", "-shared", "-o", output, "decoder.c", "-lm"], d)
    return d / output


def compile_harness(src_dir: str | os.PathLike, options: CompileSettings | None = None,
                    output: str = "decoder_main") -> Path:
    """The standalone harness: main.c + decoder.c -> src_dir/decoder_main."""
    options = options or CompileSettings()
    d = Path(src_dir)
    cc = find_compiler(options.cc)
    _run([cc, *options.flags(), "-o", output, "main.c", "decoder.c", "-lm"], d)
    return d / output


def compile_pyext(src_dir: str | os.PathLike, module: str,
                  options: CompileSettings | None = None) -> Path:
    """pyext.c + decoder.c -> src_dir/<module><EXT_SUFFIX> (needs Python.h and numpy)."""
    import sysconfig

    import numpy as np

    options = options or CompileSettings()
    d = Path(src_dir)
    cc = find_compiler(options.cc)
    py_include = sysconfig.get_paths()["include"]
    if not (Path(py_include) / "Python.h").is_file():
        raise CompilerError(f"no Python.h in {py_include}: install the Python headers, "
                            "e.g. `apt-get install python3-dev`")
    output = module + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")
    flags = [f for f in options.flags() if f != "-Werror"]
    _run([cc, *flags, "-fPIC", "-shared", f"-I{py_include}", f"-I{np.get_include()}",
          "-o", output, "pyext.c", "decoder.c", "-lm"], d)
    return d / output

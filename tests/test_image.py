"""The Docker image runs `apihub` (docker-compose.yml starts every hub container with it). There is no Docker engine
on CI, so this installs what the Dockerfile's COPY lines copy, and nothing else, into a fresh virtualenv the way its
`RUN pip install .` does, and runs the commands from outside the repository: the checkout's own packages
(synthetic/, benchmarks/, tests/) and the dev and bench extras are not importable there, as in the image. The
commands that run dev code (`apihub dev demo-files`, `model train`, `bench`) say that they need a source checkout,
and `apihub up` runs without its demo, saying how to get it.

It takes about 50 s on a 2-core machine, 35 s of it `pip install` (the dependencies come from pip's cache or PyPI).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"

# pip's first run on a machine downloads a few hundred MB (polars, scikit-learn, grpcio...).
pytestmark = pytest.mark.timeout(1200)

# What a container runs: the services docker-compose.yml starts, and the modules behind them.
COMMANDS = [
    ["--help"],
    ["serve", "--help"],
    ["up", "--help"],
    ["screen", "--help"],
    ["dev", "--help"],
    ["dev", "demo-files", "--help"],
    ["model", "--help"],
    ["model", "train", "--help"],
    ["topics", "--help"],
]
MODULES = [
    "services.cli",
    "services.api_ingest.server",
    "services.profiler.worker",
    "services.router.server",
    "services.launcher",
    "services.profiler.model",
]
# Commands whose code is dev code (synthetic/, benchmarks/): in the image each exits 2 with this message.
NEEDS_A_CHECKOUT = {
    "apihub dev demo-files": ["dev", "demo-files", "demo"],
    "apihub model train": ["model", "train", "--out", "models"],
    "apihub bench": ["bench", "--quick"],
}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def image_copies(text: str) -> tuple[str, list[tuple[list[str], str]]]:
    """The final WORKDIR and each COPY as (sources relative to the build context, destination)."""
    workdir, copies = "/", []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            workdir, copies = "/", []  # only the last stage ends up in the image
        elif keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir, args))
        elif keyword in ("COPY", "ADD"):
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            assert not any(f.startswith("--from") for f in flags), "COPY --from: teach this test about stages"
            *sources, dest = [w for w in words if not w.startswith("--")]
            copies.append((sources, str(PurePosixPath(workdir, dest)) + ("/" if dest.endswith("/") else "")))
    return workdir, copies


def _dockerignore() -> list[tuple[bool, str]]:
    path = ROOT / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    rules = []
    for line in (raw.strip() for raw in lines):
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, os.path.normpath(line.removeprefix("!")).lstrip("/")))
    return rules


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether .dockerignore keeps a path (relative to the context) out of the build context: the last matching
    rule wins, and a rule that matches a folder covers what is in it (fnmatch: near enough to Docker's patterns)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for keep, pattern in rules:
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            ignored = not keep
    return ignored


def build_context(dest_root: Path) -> Path:
    """Copy what the Dockerfile copies into dest_root (standing for the image's /); return its WORKDIR there."""
    workdir, copies = image_copies(DOCKERFILE.read_text())
    assert copies, "the Dockerfile copies nothing?"
    rules = _dockerignore()
    for sources, dest in copies:
        matched = [p for s in sources for p in sorted(ROOT.glob(s))]
        assert matched, f"COPY {sources}: nothing in the repository matches"
        target = dest_root / dest.lstrip("/")
        into_folder = dest.endswith("/") or len(matched) > 1
        for src in matched:
            rel = src.relative_to(ROOT).as_posix()
            if _ignored(rel, rules):
                continue
            if src.is_dir():  # Docker copies a folder's contents
                shutil.copytree(
                    src,
                    target,
                    dirs_exist_ok=True,
                    ignore=lambda d, names: [
                        n for n in names if _ignored((Path(d) / n).relative_to(ROOT).as_posix(), rules)
                    ],
                )
            else:
                file_target = target / src.name if into_folder else target
                file_target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, file_target)
    return dest_root / workdir.lstrip("/")


def test_the_dockerfile_installs_the_folder_it_copies_to():
    """The copy below installs the WORKDIR, as the image's RUN line does: keep the two in step."""
    runs = [shlex.split(args) for keyword, args in _instructions(DOCKERFILE.read_text()) if keyword == "RUN"]
    assert any({"pip", "install", "."} <= set(words) for words in runs), runs


class Image:
    def __init__(self, venv: Path, outside: Path):
        self.venv, self.outside = venv, outside
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"

    def run(self, program: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=self.outside,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Image:
    """A fresh virtualenv with `pip install` of the Dockerfile's copies (not editable), and a folder to run in."""
    base = tmp_path_factory.mktemp("image")
    app = build_context(base / "root")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("PIP_DEFAULT_TIMEOUT", "120")  # per network read; slow mirrors are fine
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Not editable, and byte-compiled, as in the image (the commands below then start as quickly as they do there).
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    outside = base / "work"
    outside.mkdir()
    return Image(venv, outside)


def _clean(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return output


def test_the_install_holds_the_copies_alone(image):
    """The hub's package comes from the venv, and the checkout's dev packages are nowhere to be found."""
    probe = (
        "import importlib.util, json, services; "
        "print(json.dumps([services.__file__] + [bool(importlib.util.find_spec(m)) for m in "
        "('synthetic', 'benchmarks', 'tests', 'pytest', 'hypothesis', 'pydifact', 'grpc_tools', 'matplotlib', "
        "'psutil')]))"
    )
    result = image.run("python", "-c", probe)
    assert result.returncode == 0, _clean(result)
    where, *dev_found = json.loads(result.stdout)
    assert Path(where).is_relative_to(image.venv), where
    assert not any(dev_found), dev_found


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_apihub_commands_start(image, args):
    result = image.run("apihub", *args)
    output = _clean(result)
    assert result.returncode == 0, output
    assert "Usage:" in output


@pytest.mark.parametrize("module", MODULES)
def test_service_modules_import(image, module):
    result = image.run("python", "-c", f"import {module}")
    output = _clean(result)
    assert result.returncode == 0, output


def test_every_module_of_the_package_imports(image):
    """No module of services/ imports a dev-only package at import time (services.protogen imports grpc_tools,
    a dev extra, only when `apihub dev protos` runs; the CLI imports synthetic/ and benchmarks/ only in the
    commands that run them)."""
    walk = (
        "import importlib, pkgutil, services\n"
        "for m in pkgutil.walk_packages(services.__path__, 'services.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    result = image.run("python", "-c", walk)
    assert result.returncode == 0, _clean(result)


@pytest.mark.parametrize("command", NEEDS_A_CHECKOUT, ids=str)
def test_dev_commands_say_they_need_a_source_checkout(image, command):
    result = image.run("apihub", *NEEDS_A_CHECKOUT[command])
    output = _clean(result)
    assert result.returncode == 2, output
    assert f"{command} needs a source checkout" in result.stderr, output
    assert "make setup" in result.stderr, output


def test_dev_token_runs_from_the_runtime(image):
    """Credentials are the runtime's own scheme (services.auth), not dev code: `apihub dev token` works in the image."""
    result = image.run("apihub", "dev", "token", "--member", "FJI")
    output = _clean(result)
    assert result.returncode == 0 and result.stdout.strip(), output


def test_bench_help_says_it_needs_a_source_checkout(image):
    """`apihub bench` hands even --help to the suite's own command, which is not there."""
    result = image.run("apihub", "bench", "--help")
    output = _clean(result)
    assert result.returncode == 2, output
    assert "apihub bench needs a source checkout" in result.stderr, output


def test_screen_runs_on_the_packaged_data(image):
    """Offline screening reads the package's data (member directory, sharing policy, traveller names): they are
    installed with it. The demo files are written by the checkout (the image has no demo)."""
    from synthetic.demo import write_demo_files

    demo = image.outside / "demo"
    write_demo_files(demo)
    lists = [arg for p in sorted(demo.glob("watchlist-*.csv")) for arg in ("--watchlist", str(p))]
    result = image.run("apihub", "screen", "--json", *lists, *map(str, sorted(demo.glob("manifest-*.json"))))
    output = _clean(result)
    assert result.returncode == 0, output
    assert [json.loads(line) for line in result.stdout.splitlines()], "the demo files plant a watchlisted traveller"


@pytest.mark.integration
def test_up_runs_the_hub_without_the_demo_and_says_how_to_get_it(image, kafka, tmp_path):
    """`apihub up` (demo on by default) from the image's files against the test session's broker: the hub comes up
    as with --no-demo, after one line saying where the demo is, and stops by itself."""
    from services.devkafka import free_port

    env = {
        "APIHUB_KAFKA_BOOTSTRAP": kafka,
        "APIHUB_TOPIC_PREFIX": f"image{uuid.uuid4().hex[:8]}",
        "APIHUB_STATE_DIR": str(tmp_path / "state"),
        "APIHUB_INGEST_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_DELIVERY_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_INGEST_METRICS_PORT": "-1",
        "APIHUB_PROFILER_METRICS_PORT": "-1",
        "APIHUB_ROUTER_METRICS_PORT": "-1",
        "APIHUB_CONSOLE_LISTEN": f"127.0.0.1:{free_port()}",
        "APIHUB_CONSOLE_METRICS_PORT": "-1",
    }
    result = image.run("apihub", "up", "--exit-after", "5", env=env)
    output = _clean(result)
    assert result.returncode == 0, output
    [line] = [line for line in output.splitlines() if "demo" in line.lower() and "secret" not in line]
    assert "running as --no-demo" in line and "make demo" in line, output
    assert "Hub up:" in output and "Hub stopped." in output, output


def test_bench_in_a_checkout_is_the_suites_own_command():
    """Beside the image's refusal above: in a checkout, `apihub bench` hands its arguments to benchmarks/cli.py."""
    from typer.testing import CliRunner

    from services.cli import app

    shown = CliRunner().invoke(app, ["bench", "--help"])
    assert shown.exit_code == 0, shown.output
    assert "apihub bench" in shown.output and "--quick" in shown.output and "--assume" in shown.output
    refused = CliRunner().invoke(app, ["bench", "--quick", "--full"])
    assert refused.exit_code == 2 and "choose --quick or --full" in refused.output

"""Security: files never run code, names reaching generated C are validated, no shell anywhere.

- a checkpoint whose pickle would run a command is refused with a clear error and the command does
  not run (a marker file proves it), through the Python API and through the command line;
- config files go through safe YAML/JSON loaders (a YAML ``!!python`` tag is refused, nothing runs);
- a C prefix carrying code is rejected before anything is written;
- a static audit of the package source: no ``shell=True``, ``os.system``, ``os.popen``, ``eval``/``exec``,
  ``pickle.load(s)``, unsafe ``yaml.load``, and every ``torch.load`` passes ``weights_only=True``.
"""

from __future__ import annotations

import ast
import os
import pickle
import shlex
import sys
from pathlib import Path

import pytest
import torch

from liquidflow.checkpoint import load_model, save_model
from liquidflow.export import to_c
from liquidflow.training import build_model

SRC = Path(__file__).resolve().parents[2] / "src" / "liquidflow"


class Payload:
    """Unpickling this object runs ``touch <marker>``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _evil_files(tmp_path: Path) -> list[Path]:
    marker = tmp_path / "PWNED"
    zipped = tmp_path / "evil.lf"  # torch's zip format with the payload inside a checkpoint-like dict
    torch.save({"format": "liquidflow-checkpoint", "version": 1, "class_name": Payload(marker)}, zipped)
    raw = tmp_path / "evil_raw.lf"  # a bare pickle stream
    raw.write_bytes(pickle.dumps(Payload(marker)))
    return [zipped, raw]


def test_malicious_checkpoint_is_refused_and_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    for path in _evil_files(tmp_path):
        with pytest.raises(ValueError, match=r"is not a readable liquidflow checkpoint \(truncated, corrupted"):
            load_model(path)
        assert not marker.exists(), f"loading {path.name} ran its payload"
    # sanity check of the test itself: an unsafe load of the same file does run the command
    torch.load(tmp_path / "evil.lf", weights_only=False)
    assert marker.exists()


def test_malicious_checkpoint_through_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liquidflow.cli import build_app

    marker = tmp_path / "PWNED"
    evil = _evil_files(tmp_path)[0]
    runner = CliRunner()
    for args in (["export", str(evil), "-o", str(tmp_path / "c")], ["evaluate", str(evil)], ["info", str(evil)]):
        result = runner.invoke(build_app(), args)
        assert result.exit_code != 0, args
        assert "not a readable liquidflow checkpoint" in (result.output + str(result.exception)), args
        assert not marker.exists()


def test_config_yaml_python_tag_is_refused(tmp_path: Path) -> None:
    from liquidflow.training import TrainConfig

    marker = tmp_path / "PWNED"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f'model: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ValueError, match="evil.yaml: not a valid YAML config: could not determine a constructor"):
        TrainConfig.from_file(cfg)
    assert not marker.exists()
    with pytest.raises(ValueError, match="the value is not plain YAML: could not determine a constructor"):
        TrainConfig().with_overrides([f'trainer.lr=!!python/object/apply:os.system ["touch {marker}"]'])
    assert not marker.exists()


@pytest.mark.parametrize(
    "prefix",
    [
        'lf; system("touch PWNED"); int x',
        "lf\n#include <stdlib.h>",
        "lf/*",
        "int",
        "_lf",
        "lf__x",
        "9lf",
        "a" * 33,
        "",
        "lf é",
        "../../etc/lf",
    ],
)
def test_c_prefix_injection_rejected(prefix: str, tmp_path: Path) -> None:
    model = build_model("cfc", 2, 1, units=4, backbone_units=4)
    out = tmp_path / "c"
    with pytest.raises(ValueError, match="prefix must"):
        to_c(model, out, prefix=prefix)
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_c_prefix_injection_through_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from liquidflow.cli import build_app

    good = save_model(build_model("cfc", 2, 1, units=4, backbone_units=4), tmp_path / "m.lf")
    result = CliRunner().invoke(build_app(), ["export", str(good), "-o", str(tmp_path / "c"), "--prefix", "x;y"])
    assert result.exit_code == 2 and "prefix must be a C identifier" in result.output
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def _calls(tree: ast.AST):  # type: ignore[no-untyped-def]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def test_source_audit_no_shell_no_unsafe_loads() -> None:
    problems = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(SRC.parent)
        for node, owner, name in _calls(tree):
            kw = {k.arg: k.value for k in node.keywords}
            at = f"{where}:{node.lineno}"
            shell = kw.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                problems.append(f"{at}: shell= in {owner}.{name}")
            if owner == "subprocess" and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                problems.append(f"{at}: subprocess.{name} with a command string (use an argument list)")
            if (owner, name) in {("os", "system"), ("os", "popen"), ("pickle", "load"), ("pickle", "loads")}:
                problems.append(f"{at}: {owner}.{name}")
            if isinstance(node.func, ast.Name) and name in {"eval", "exec", "compile", "__import__"}:
                problems.append(f"{at}: {name}()")
            if owner == "yaml" and name in {"load", "unsafe_load", "full_load"}:
                problems.append(f"{at}: yaml.{name} (use yaml.safe_load)")
            if owner == "torch" and name == "load":
                wo = kw.get("weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    problems.append(f"{at}: torch.load without weights_only=True")
    assert problems == [], "\n".join(problems)


def test_cli_entry_point_has_no_shell(tmp_path: Path) -> None:
    """The console script itself: arguments with shell metacharacters stay plain strings."""
    import subprocess

    marker = tmp_path / "PWNED"
    exe = Path(sys.executable).parent / "liquidflow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "liquidflow.cli"]
    args = [*cmd, "export", f"$(touch {marker}).lf", "--prefix", f"`touch {marker}`"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert not marker.exists()

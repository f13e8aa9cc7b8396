"""The conda spec for users and the pip pins in pyproject.toml must agree."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from zsar import paths


def _pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((paths.project_root() / "pyproject.toml").read_text())
    project = data["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in reqs}


def _environment_requirements() -> tuple[dict[str, str], list]:
    env = yaml.safe_load((paths.project_root() / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip_section:
        if line.startswith("-e"):
            continue
        req = Requirement(line)
        pins[req.name.lower()] = str(req.specifier)
    return pins, env["dependencies"]


def test_environment_yml_agrees_with_pyproject():
    pyproject = _pyproject_requirements()
    environment, _ = _environment_requirements()
    assert environment == pyproject


def test_environment_yml_is_python_311_and_installs_the_package():
    _, deps = _environment_requirements()
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip_section


def test_required_pins():
    pins = _pyproject_requirements()
    for name, spec in {"torch": "==2.14.1", "torchvision": "==0.29.1", "open-clip-torch": "==3.3.0",
                       "decord": "==0.6.0"}.items():
        key = name if name in pins else name.replace("-", "_")
        assert pins.get(key) == spec, (name, pins.get(key))
    assert pins["numpy"] in (">=2.0,<3", "<3,>=2.0")

"""Every package lists its public names, each name exists, and the dependency direction holds."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ("neuro", "ann", "bridge", "experiments")


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name}.__all__ is empty"
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("neuro", ("ann", "bridge", "experiments", "brian2")),
     ("ann", ("neuro", "bridge", "experiments")),
     ("bridge", ("experiments",))],
)
def test_dependency_direction(package, forbidden):
    """Importing a package never loads the packages it must not depend on (checked in a fresh
    interpreter; Brian2 is loaded only when its engine runs)."""
    code = f"import sys, {package}; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "", f"importing {package} loaded {loaded}"

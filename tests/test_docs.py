"""The documentation builds without warnings, and the README keeps its two commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs is not installed")
def test_docs_build_strictly(tmp_path):
    result = subprocess.run(
        ["mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    main_job, test_command = blocks[0].strip(), blocks[1].strip()
    assert "spikebridge run" in main_job and "pip install" in main_job
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


DOCS = ROOT / "docs"


def _nav_pages(items) -> list[str]:
    """Every page named in an mkdocs ``nav`` (nested lists of dicts and strings)."""
    if isinstance(items, str):
        return [items]
    if isinstance(items, dict):
        return [page for value in items.values() for page in _nav_pages(value)]
    return [page for item in items for page in _nav_pages(item)]


def _experiments() -> dict:
    from experiments.registry import all_experiments

    return all_experiments()


def test_every_experiment_has_a_docs_page_in_the_nav_and_the_index():
    import yaml

    nav = set(_nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))
    index = (DOCS / "index.md").read_text()
    problems = []
    for name in sorted(_experiments()):
        page = f"experiments/{name}.md"
        if not (DOCS / page).is_file():
            problems.append(f"docs/{page} is missing")
        elif page not in nav:
            problems.append(f"docs/{page} is not in the nav of mkdocs.yml")
        elif f"({page})" not in index:
            problems.append(f"docs/index.md does not link {page}")
        elif f"spikebridge run {name}" not in (DOCS / page).read_text():
            problems.append(f"docs/{page} never says how to run it (`spikebridge run {name}`)")
    assert not problems, "; ".join(problems)


def test_docs_images_exist_and_stay_small():
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), (
                f"{page.relative_to(ROOT)} shows {target}, which does not exist")
    for image in (DOCS / "img").glob("*.png"):
        size = image.stat().st_size
        assert size < 200_000, (
            f"{image.relative_to(ROOT)} is {size / 1000:.0f} kB; downscale it below 200 kB")


def _logical_lines(text: str) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def test_settings_named_in_the_experiment_pages_exist():
    """Every ``--set key=`` and every key in a page's settings table is a setting of its
    experiment (another experiment's where the line runs that one)."""
    experiments = _experiments()
    problems = []
    for page in sorted((DOCS / "experiments").glob("*.md")):
        own = page.stem
        in_table = False
        for line in _logical_lines(page.read_text()):
            other = re.search(r"spikebridge run ([\w-]+)", line)
            name = other.group(1) if other else own
            keys = re.findall(r"--set (\w+)=", line)
            if line.startswith("| setting |"):
                in_table = True
            elif in_table and line.startswith("|"):
                if not line.startswith("| ---"):
                    keys += re.findall(r"`(\w+)`", line.split("|")[1])
            else:
                in_table = False
            if name not in experiments:
                continue
            fields = experiments[name].config_type.model_fields
            problems += [f"{page.name}: {name} has no setting {key!r}"
                         for key in keys if key not in fields]
    assert not problems, "; ".join(problems)

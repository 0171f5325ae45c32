"""Static checks of every role: the conventions that make a role readable and safe to run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def _load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    # Every default is an option of some entry point (main, or e.g. redis's `sentinel`), and
    # every entry point that names it gives the same default and a description.
    defaults = _load(role / "defaults" / "main.yml")
    entry_points = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    named = set().union(*(set(spec.get("options", {})) for spec in entry_points.values()))
    assert set(defaults) <= named, f"not an option of any entry point: {sorted(set(defaults) - named)}"
    assert set(entry_points["main"]["options"]) <= set(defaults), "main names a variable without a default"
    for entry, spec in entry_points.items():
        for name, option in spec.get("options", {}).items():
            if name in defaults:
                differs = f"{entry}: {name}: default differs from defaults/main.yml"
                assert option.get("default") == defaults[name], differs
            assert option.get("description"), f"{entry}: {name}: no description"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_prefixed_and_documented(role):
    lines = (role / "defaults" / "main.yml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and ":" in line:
            name = line.split(":", 1)[0]
            assert name.startswith(f"{role.name}_"), f"{name} lacks the role prefix"
            assert i > 0 and lines[i - 1].startswith("#"), f"{name} has no comment on the line above it"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_layout(role):
    for part in ("defaults/main.yml", "meta/argument_specs.yml", "handlers/main.yml", "tasks/main.yml"):
        assert (role / part).is_file(), part
    for template in (role / "templates").glob("*.j2"):
        assert "ansible_managed" in template.read_text().splitlines()[0], template.name


ROOT = Path(__file__).resolve().parents[2]


def _roles_applied(scenario: Path) -> set[str]:
    """Roles named by a scenario's playbooks (converge, prepare, side_effect...) and by the
    playbooks they import (the stack's own plays: molecule/app imports playbooks/deploy/)."""
    names: set[str] = set()
    pending = [p for p in scenario.glob("*.yml") if p.name != "molecule.yml"]
    seen: set[Path] = set()
    while pending:
        playbook = pending.pop().resolve()
        if playbook in seen or not playbook.is_file():
            continue
        seen.add(playbook)
        text = playbook.read_text()
        names.update(re.findall(r"(?:role|name): ([a-z_]+)\n", text))
        pending += [playbook.parent / m for m in re.findall(r"import_playbook: (\S+)", text)]
    return names


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_has_a_molecule_scenario(role):
    """A scenario converges the role and has testinfra tests of it (tests/test_<role>.py).

    One scenario may test several roles (molecule/cluster: rabbitmq), so the stack's slow parts
    are installed once."""
    scenarios = [
        path.parent
        for path in sorted((ROOT / "molecule").glob("*/molecule.yml"))
        if path.parent.name == role.name or role.name in _roles_applied(path.parent)
    ]
    assert scenarios, f"no Molecule scenario converges {role.name}"
    tested = [s for s in scenarios if (s / "tests" / f"test_{role.name}.py").is_file()]
    assert tested, f"no tests/test_{role.name}.py in {[s.name for s in scenarios]}"


def test_molecule_hosts_run_the_lab_image():
    """Every podman platform runs the lab's image of a supported suite, and CI runs both suites:
    Debian 13 by default, Debian 12 in at least one scenario (the support claim, tested)."""
    defaults = _load(ROOT / "roles" / "lab" / "defaults" / "main.yml")
    suites = _load(ROOT / "roles" / "lab" / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"][
        "lab_debian_suite"
    ]["choices"]
    images = {defaults["lab_image"].replace("{{ lab_debian_suite }}", suite): suite for suite in suites}
    configs = [ROOT / ".config" / "molecule" / "config.yml", *sorted((ROOT / "molecule").glob("*/molecule.yml"))]
    used = set()
    for config in configs:
        data = _load(config)
        if data.get("driver", {}).get("name", "podman") != "podman":
            continue  # molecule/lab: the role under test makes its own host
        for platform in data.get("platforms", []):
            assert platform["image"] in images, f"{config.relative_to(ROOT)}: {platform['name']}"
            suite = images[platform["image"]]
            used.add(suite)
            if suite != defaults["lab_debian_suite"]:
                command = data.get("dependency", {}).get("command", "")
                assert f"lab_debian_suite={suite}" in command, f"{config.relative_to(ROOT)}: no {suite} image"
    assert used == set(suites)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_preflight_carries_every_phase_tag(role):
    """``--tags <role>_configure`` (or any phase) must still run the checks before any change."""
    tasks = _load(role / "tasks" / "main.yml")
    phases = {tag for task in tasks for tag in task.get("tags", []) if tag.startswith(f"{role.name}_")}
    preflight = [task for task in tasks if f"{role.name}_preflight" in task.get("tags", [])]
    if not preflight:
        pytest.skip(f"{role.name} has no preflight phase")
    assert phases <= set(preflight[0]["tags"])


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_no_role_names_the_app_paths_but_fleet_app(role):
    """/opt/fleet and /etc/fleet belong to fleet_app, which exports them (tasks/outputs.yml)."""
    if role.name == "fleet_app":
        pytest.skip("fleet_app owns the app's paths")
    for path in role.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "/opt/fleet" not in text and "/etc/fleet" not in text, path.relative_to(ROOT)
            assert "fleet_app_home" not in text and "default('fleet')" not in text, path.relative_to(ROOT)

"""The lab/Molecule host builder (scripts/trixie-host.sh) never archives or deletes through a mount.

debootstrap once left /proc mounted inside its target; the builder then archived that /proc and ran
`rm -rf` over the live mount. Here a real tmpfs, holding a file, is mounted into throwaway trees
(bind-mounted at two depths, one under a name with a space) and the builder's own commands run on them.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "scripts" / "trixie-host.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


@pytest.fixture
def outside(tmp_path):
    """A tmpfs outside the trees, with content that must survive whatever happens to them."""
    where = tmp_path / "outside"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "m2p-test", str(where)], check=True)
    (where / "precious.txt").write_text("keep me")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _tree_with_mounts(base: Path, outside: Path) -> Path:
    tree = base / "host"
    for sub in ("proc", "var/lib/with space"):
        (tree / sub).mkdir(parents=True)
        subprocess.run(["mount", "--bind", str(outside), str(tree / sub)], check=True)
    (tree / "etc").mkdir()
    (tree / "etc" / "hostname").write_text("lab-db\n")
    return tree


def _cleanup(tree: Path) -> None:
    for sub in ("var/lib/with space", "proc"):
        if (tree / sub).exists() and _mounted(tree / sub):
            subprocess.run(["umount", "-l", str(tree / sub)], check=False)


def test_destroy_unmounts_everything_inside_then_deletes_and_the_mounted_content_survives(tmp_path, outside):
    tree = _tree_with_mounts(tmp_path, outside)
    try:
        r = subprocess.run([str(HOST), "destroy", str(tree)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert not tree.exists()
        assert (outside / "precious.txt").read_text() == "keep me"
    finally:
        _cleanup(tree)


def test_archive_unmounts_first_and_packs_only_the_tree_itself(tmp_path, outside):
    tree = _tree_with_mounts(tmp_path, outside)
    try:
        tarball = tmp_path / "host.tar"
        r = subprocess.run([str(HOST), "archive", str(tree), str(tarball)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        names = tarfile.open(tarball).getnames()
        assert "./etc/hostname" in names and "./proc" in names
        assert not any("precious" in n for n in names)  # nothing from the mount was archived
        assert not _mounted(tree / "proc") and not _mounted(tree / "var/lib/with space")
        assert (outside / "precious.txt").read_text() == "keep me"
    finally:
        _cleanup(tree)


def test_a_removal_refuses_while_a_mount_remains_inside(tmp_path, outside):
    """The builder's own safe_remove, with its unmount step made a no-op: a mount that even a lazy unmount
    cannot undo cannot be made on demand, so that one fault is simulated (the refusal itself is real).
    The removal stops with one line naming the mount, and deletes nothing."""
    tree = _tree_with_mounts(tmp_path, outside)
    functions = f'source <(sed -n "/^mounts_under()/,/^}}$/p; /^safe_remove()/,/^}}$/p" {HOST})'
    try:
        r = subprocess.run(["bash", "-c", f'{functions}; die() {{ echo "$*" >&2; exit 2; }}; unmount_all() {{ :; }}; '
                                          f'safe_remove "{tree}"'], capture_output=True, text=True)
        assert r.returncode == 2 and "refusing to delete" in r.stderr and f"{tree}/proc" in r.stderr, r.stderr
        assert (tree / "etc" / "hostname").exists()
        assert (outside / "precious.txt").read_text() == "keep me"
    finally:
        _cleanup(tree)

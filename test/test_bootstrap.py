"""The bootstrap's promises that can be checked without the network:
an existing Base is used as it is, and a machine that cannot use apt gets
a clear message saying what to set."""
import os
import shutil
import subprocess
import tempfile

import gwharness

BOOTSTRAP = gwharness.TOP / "scripts" / "bootstrap"


def _bootstrap(env_changes, cache, uid=None):
    env = dict(os.environ)
    env.pop("EPICS_BASE", None)
    env.update({"GW_CACHE_DIR": str(cache), "GW_SKIP_PACKAGES": "1"})
    env.update(env_changes)
    argv = [str(BOOTSTRAP)]
    if uid is not None:
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + argv
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_bootstrap_uses_an_existing_epics_base_and_builds_nothing(tmp_path):
    base = gwharness.epics_base()
    release = gwharness.TOP / "configure" / "RELEASE.local"
    result = _bootstrap({"EPICS_BASE": str(base)}, tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "using EPICS_BASE=%s" % base in result.stderr
    assert "building" not in result.stderr and "fetching" not in result.stderr
    assert not any((tmp_path / "cache").iterdir()), "nothing fetched or built"
    assert release.read_text().strip() == "EPICS_BASE=%s" % base


def test_bootstrap_rejects_an_epics_base_that_is_not_built(tmp_path):
    (tmp_path / "notbase").mkdir()
    result = _bootstrap({"EPICS_BASE": str(tmp_path / "notbase")}, tmp_path / "cache")
    assert result.returncode != 0
    assert "is not a built EPICS Base" in result.stderr


def test_bootstrap_without_apt_says_what_to_set():
    nobody = 65534
    home = tempfile.mkdtemp(prefix="gw-nobody-")
    try:
        os.chown(home, nobody, nobody)
        result = _bootstrap({"HOME": home}, os.path.join(home, "cache"), uid=nobody)
    finally:
        shutil.rmtree(home)
    assert result.returncode != 0
    assert "cannot use apt" in result.stderr
    assert "EPICS_BASE=/path/to/base" in result.stderr

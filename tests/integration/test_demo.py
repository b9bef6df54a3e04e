"""make demo's script, run once non-interactively: the how-to's scenario
must come up, show every key in the query table, run a kernel and the packed
CNN through the tracker on devices behind the proxy, and stop everything
it started."""
import os
import re
import subprocess

from conftest import BUILD, ROOT


def test_demo_runs_the_howto_scenario_and_stops_cleanly():
    env = dict(os.environ, FERRY_DEMO_ONCE="1")
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh"), BUILD],
                       capture_output=True, text=True, timeout=120, env=env)
    out = r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"server:proxy\[([^\]]*)\]", out)
    assert m and sorted(m.group(1).split(",")) == ["K0", "K1", "K2"], out
    for key in ("K0", "K1", "K2", "cpu"):
        assert any(line.split()[:2] == [key, "1"] for line in out.splitlines()), out
    assert "output [1. 2. 3. 4. 5. 6. 7. 8.]" in out
    assert "mean" in out
    # The how-to's last step: the CNN packed by ferry pack runs on a
    # proxied device and prints its 10 class probabilities and timings.
    m = re.search(r"cnn_out.npy \[\[([^\]]*)\]\]", out)
    assert m, out
    probs = [float(x) for x in m.group(1).split()]
    assert len(probs) == 10 and abs(sum(probs) - 1.0) < 1e-3, probs
    assert re.search(r"run\s+[0-9.]+ ms\s+\(on the device", out), out
    assert "all stopped" in out
    # Nothing the demo started is left running.
    ps = subprocess.run(["pgrep", "-f", os.path.join(BUILD, "ferry") + " (tracker|proxy|server) --host 127.0.0.1 --port 9"],
                        capture_output=True, text=True)
    assert ps.stdout.strip() == "", ps.stdout

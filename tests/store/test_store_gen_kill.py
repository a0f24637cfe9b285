"""A process writing generative items, killed mid-run, leaves whole items (every sample) and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sharpbench.store import Store
from store_gen_helpers import gen_item, gen_spec

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from sharpbench.store import Store
    from store_gen_helpers import gen_item, gen_result, gen_spec
    spec = gen_spec()
    with Store(sys.argv[1], shared=True) as st:
        i = 0
        while True:
            chunk = [gen_result(j, range(4), right={j % 3}) for j in range(i, i + 3)]
            st.write_items(spec, chunk, gen_items={j: gen_item(j, repeats=4) for j in range(i, i + 3)})
            i += 3
            print(i, flush=True)
    """
)


def test_killed_generative_writer_leaves_whole_items(tmp_path):
    path = tmp_path / "s.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        written = 0
        while written < 12 and time.monotonic() < deadline:  # at least four chunks committed
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            written = int(line)
        time.sleep(0.05)  # somewhere inside a later chunk
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    spec = gen_spec()
    with Store(path, shared=True) as st:
        ids = sorted(st.stored_item_ids(spec.run_id))
        assert len(ids) >= 12 and len(ids) % 3 == 0 and ids == list(range(len(ids)))
        gens = st.generations_frame([spec.run_id])
        per_item = gens.groupby("item_id").size()
        assert sorted(per_item.index) == ids and set(per_item) == {4}  # no half-written item, no orphan sample
        assert st.get_run(spec.run_id)["status"] == "interrupted"
        n = len(ids)
        missing = st.missing_samples(spec.run_id, [gen_item(j, repeats=4) for j in range(n + 3)])
        assert all(missing[j] == [] for j in range(n)) and all(missing[j] == [0, 1, 2, 3] for j in range(n, n + 3))

"""Run pyright (basic mode, settings in pyproject.toml) on `jnas/` and fail on any error
not in the committed baseline.

The baseline lists the errors pyright found when it was introduced, keyed by file, rule
and message (not line, so edits elsewhere in a file do not shift them). New code must be
clean; fixing an old error and rerunning with `--update` shrinks the baseline.

    python .ci/pyright_gate.py            # check
    python .ci/pyright_gate.py --update   # rewrite the baseline (only to remove entries)
"""

from __future__ import annotations

import collections
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "pyright_baseline.json"


def errors() -> collections.Counter:
    local = pathlib.Path(sys.executable).parent / "pyright"  # the venv's, beside python
    exe = str(local) if local.exists() else "pyright"
    out = subprocess.run(
        [exe, "--pythonpath", sys.executable, "--outputjson"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(out.stdout)
    found: collections.Counter = collections.Counter()
    for d in report["generalDiagnostics"]:
        if d["severity"] == "error":
            path = str(pathlib.Path(d["file"]).resolve().relative_to(ROOT))
            found[f"{path} | {d.get('rule', '')} | {d['message'].splitlines()[0]}"] += 1
    return found


def main() -> int:
    found = errors()
    if "--update" in sys.argv:
        BASELINE.write_text(json.dumps(dict(sorted(found.items())), indent=0) + "\n")
        print(f"pyright baseline: {sum(found.values())} errors")
        return 0
    allowed = collections.Counter(json.loads(BASELINE.read_text()))
    new = found - allowed
    if new:
        print("pyright: errors not in .ci/pyright_baseline.json:")
        for key, n in sorted(new.items()):
            print(f"  {n} x {key}")
        return 1
    print(
        f"pyright: {sum(found.values())} errors, all in the baseline "
        f"({sum(allowed.values())} entries); none new"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

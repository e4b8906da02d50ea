"""What the Python scenario suites share: run every `scenario_*` function of a module in
name order, print `PASS|FAIL <client> NAME SECONDS` for each and the closing
`N passed, N failed, 0 skipped` (compat-tests/report.py reads these lines)."""

import time
import traceback


def scenarios(namespace):
    """(name, function) of every `scenario_` function in `namespace`, by name. A leading
    `<digit>_` in the name only orders the scenarios and is left out of the report."""
    found = []
    for name, fn in sorted(namespace.items()):
        if name.startswith("scenario_"):
            name = name[len("scenario_"):]
            if len(name) > 2 and name[0].isdigit() and name[1] == "_":
                name = name[2:]
            found.append((name, fn))
    return found


def run(client, found, call=lambda fn: fn()):
    """Runs each scenario through `call`; returns the exit status (1 if any failed)."""
    passed = failed = 0
    for name, fn in found:
        start = time.time()
        try:
            call(fn)
            passed += 1
            status = "PASS"
        except Exception:  # report and go on: every scenario gets a line
            failed += 1
            status = "FAIL"
            traceback.print_exc()
        print(f"{status} {client} {name} {time.time() - start:.1f}", flush=True)
    print(f"{passed} passed, {failed} failed, 0 skipped", flush=True)
    return 1 if failed else 0

"""Run a Python script or module (`peak_rss.py OUT script.py ARGS...` or `peak_rss.py OUT -m module ARGS...`)
and, when it ends, write to OUT the peak resident memory, in KiB, of this process and of the processes it
waited for.

Why not the parent's wait4 alone: on Linux, exec() carries the high-water mark of the address space it
replaces into the new program's ru_maxrss, and Python's subprocess starts children with vfork, whose
address space is the parent's. A benchmark that measured something large in-process and then ran a child
was charged its own peak for the child (bench_train's personalize child read 11 GB). VmHWM, read here in
the child, starts afresh at exec.
"""

import atexit
import resource
import runpy
import sys
from pathlib import Path


def own_peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    out, target, *rest = sys.argv[1:]
    # Children of this process inherit at most its own peak through exec, so the larger of the two is
    # the peak of the tree.
    atexit.register(lambda: Path(out).write_text(
        str(max(own_peak_kib(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))))
    if target == "-m":
        module, *rest = rest
        sys.argv = [module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *rest]
        sys.path.insert(0, str(Path(target).resolve().parent))
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()

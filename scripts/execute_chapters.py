"""Execute the book's chapters several at a time into the build's execution cache, before `jupyter-book build`.

`jupyter-book build` (myst-nb, `execute_notebooks: cache`) runs the chapters one after another. This script runs
them over a pool of processes, one kernel each, and stores every executed chapter in the same jupyter-cache
folder that the build then reads (`execute.cache` in _config.yml). A cached chapter is matched by the hash of its
code cells and kernel, so the build uses these outputs unchanged and executes nothing again; a chapter that
failed here is not cached, and the build executes it itself and reports its error as usual. The chapters are run
exactly as the build runs them: read by myst-nb's reader, in their own folder, with the configured timeout.

Usage: python scripts/execute_chapters.py [--jobs J]   (from the repository root; default J: the usable CPUs)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.read import is_myst_markdown_notebook, myst_nb_reader_plugin

from ntkuq.book import chapters as toc_chapters

ROOT = Path(__file__).resolve().parent.parent


def chapters() -> list:
    """The chapters of _toc.yml that myst-nb executes (MyST markdown notebooks), in the order of the book."""
    return [p for p in toc_chapters(ROOT) if is_myst_markdown_notebook(p.read_text("utf8"))]


def execute(path: str, timeout: int, allow_errors: bool):
    """Run one chapter in its own folder; returns (path, executed notebook or None, seconds, error text)."""
    nb = myst_nb_reader_plugin(path)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=allow_errors,
                                 meta_override=True)
    if result.err is not None:
        return path, None, result.time, f"{type(result.err).__name__}: {result.err}"
    return path, nb, result.time, None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as pytest-xdist's `-n auto` counts), else the CPU count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def store(cache, path: str, nb, seconds: float) -> None:
    """Put an executed chapter into the jupyter-cache `cache` as myst-nb would (matched by its code's hash)."""
    record = cache.add_nb_to_project(path, read_data={"name": "myst_nb_md", "type": "plugin"})
    cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds}),
                                check_validity=False, overwrite=True)


def main(argv=None) -> int:
    """Execute every chapter into the cache; returns 0 (a failed chapter is left to the build to report)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=usable_cpus(), help="chapters run at once (default: usable CPUs)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs: expected a positive number, got {args.jobs}", file=sys.stderr)
        return 2
    config = yaml.safe_load((ROOT / "_config.yml").read_text()).get("execute", {})
    cache = get_cache(str(ROOT / config.get("cache", "_build/.jupyter_cache")))
    timeout, allow_errors = int(config.get("timeout", 30)), bool(config.get("allow_errors", False))
    todo = [str(p) for p in chapters()]
    start = time.time()
    print(f"executing {len(todo)} chapters, {args.jobs} at a time", flush=True)
    failed = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(execute, path, timeout, allow_errors) for path in todo]
        for fut in as_completed(futures):
            path, nb, seconds, err = fut.result()
            name = Path(path).relative_to(ROOT)
            if err is not None:
                failed.append(str(name))
                print(f"  {name}: FAILED after {seconds:.0f} s ({err.splitlines()[0][:200]}); the build runs it again",
                      flush=True)
                continue
            store(cache, path, nb, seconds)
            print(f"  {name}: {seconds:.0f} s", flush=True)
    print(f"chapters executed in {time.time() - start:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

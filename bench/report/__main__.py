"""Write results/report.md and its charts from a pytest-benchmark results file.

Usage: python -m bench.report [RESULTS.json] [--output-dir DIR]

Without RESULTS.json the newest file under results/benchmarks/ is read.
"""

import argparse
import os
import sys

from bench.report.markdown import render_markdown
from bench.report.model import build_report
from bench.report.plots import plot_memory, plot_phases, plot_sweep, plot_throughput
from bench.results import RESULTS_DIR, latest_results_file, load_results
from models.errors import ConfigError


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", help="pytest-benchmark JSON file (default: newest run)")
    parser.add_argument(
        "--output-dir", default=RESULTS_DIR,
        help="folder for report.md and its PNG charts (default: %(default)s)",
    )
    return parser.parse_args(argv)


def write_report(results_path, output_dir):
    """Build the report from `results_path` and write it to `output_dir`; return the Markdown path."""
    data, benchmarks = load_results(results_path)
    report = build_report(data, benchmarks, os.path.relpath(results_path))

    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"--output-dir {output_dir!r} is a file; give a folder for report.md and its charts")
    os.makedirs(output_dir, exist_ok=True)
    charts = {
        "throughput": os.path.join(output_dir, "report-throughput.png"),
        "memory": os.path.join(output_dir, "report-memory.png"),
    }
    plot_throughput(report, charts["throughput"])
    plot_memory(report, charts["memory"])
    phases_path = os.path.join(output_dir, "report-phases.png")
    if plot_phases(report, phases_path):
        charts["phases"] = phases_path
    sweep_path = os.path.join(output_dir, "report-sweep.png")
    if plot_sweep(report, sweep_path):
        charts["sweep"] = sweep_path

    markdown_path = os.path.join(output_dir, "report.md")
    with open(markdown_path, "w", encoding="utf-8") as f:
        f.write(render_markdown(report, charts, output_dir))
    return markdown_path


def main(argv=None):
    args = parse_args(argv)
    try:
        results_path = args.results or latest_results_file()
        markdown_path = write_report(results_path, args.output_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {markdown_path} from {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

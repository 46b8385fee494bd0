"""The `avhrrsm` command line: the workflow's entry points for people and scripts.

avhrrsm config check [CONFIG]   validate a config file, print the resolved config
avhrrsm synth [--config CONFIG] [--out DIR]   write the synthetic world
avhrrsm inputs check [--configfile CONFIG] [--check-bytes]   scan every input a run would read
avhrrsm audit verify [RUN]      recompute every checksum of a run against its MANIFEST.json
avhrrsm audit lineage FILE      the chain from a file back to the raw inputs
avhrrsm audit rerun --year Y [--tile T] [RUN]   rerun a year's jobs, compare the bytes
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from avhrrsm import __version__
from avhrrsm.config import ConfigError, load_config, run_dir
from avhrrsm.logs import configure_logging
from avhrrsm.ops.audit import AuditError
from avhrrsm.ops.bench import BENCH_SECTIONS
from avhrrsm.ops.checkout import Checkout, CheckoutNotFound, checkout_at, find_checkout
from avhrrsm.requests import GROUP_JOB_CORES

LOGGER = logging.getLogger("avhrrsm")


def _cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(json.dumps(config, indent=2, sort_keys=True))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from avhrrsm.synth import write_world

    config = load_config(args.config)
    out_dir = Path(args.out) if args.out else run_dir(config) / "synthetic"
    configure_logging(args.log)
    manifest = write_world(
        out_dir=out_dir,
        region=config["region"],
        years=config["years"],
        settings=config["synthetic"],
        input_patterns=config["inputs"],
        threads=args.threads,
    )
    LOGGER.info("products: %s", {k: v["files"] for k, v in manifest["products"].items()})
    return 0


def _cmd_inputs_check(args: argparse.Namespace) -> int:
    from avhrrsm.config import input_patterns
    from avhrrsm.io.check import check_inputs
    from avhrrsm.validate.check import check_insitu

    config = load_config(args.configfile)
    patterns = input_patterns(config)
    checks = [
        *check_inputs(
            patterns,
            config["years"],
            config["region"],
            config["layouts"],
            config["stacks"]["min_day_coverage"],
        ),
        *check_insitu(patterns, config["region"], config["validation"], config["layouts"]),
    ]
    years = config["years"]
    span = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    print(f"inputs of {args.configfile} ({len(years)} years, {span}; region {config['region']})")
    for check in checks:
        print(check.line())
    blocking = [c.product for c in checks if not c.ok]
    changed = _raw_bytes_changed(config) if args.check_bytes else False
    if blocking:
        print(f"a run would fail on: {', '.join(blocking)}")
        return 1
    if changed:
        return 1
    print("every input a run needs is present and readable")
    return 0


def _raw_bytes_changed(config: dict) -> bool:
    """``inputs check --check-bytes``: the raw inputs re-hashed against the run's records."""
    from avhrrsm.ops.audit import raw_input_changes

    changes, checked = raw_input_changes(run_dir(config))
    for change in changes:
        print(change)
    print(
        f"raw inputs of {run_dir(config)}: {checked} re-hashed, {len(changes)} not as recorded"
        + (
            " (Snakemake reruns on mtime: a copy that kept the old mtime reruns nothing; "
            "force the stages that read them, e.g. --forcerun stack_year)"
            if changes
            else ""
        )
    )
    return bool(changes)


def _checkout(args: argparse.Namespace) -> Checkout:
    """The workflow's files: --workflow, else the current folder or the nearest one above."""
    return checkout_at(args.workflow) if args.workflow else find_checkout()


def _cmd_slurm_profile(args: argparse.Namespace) -> int:
    from avhrrsm.ops.slurm_profile import install_slurm_profile

    target = install_slurm_profile(
        _checkout(args).profile("slurm"),
        Path(args.dest) if args.dest else None,
        partition=args.partition,
        account=args.account,
        status_command=args.status_command,
        init_seconds=args.init_seconds,
        job_cores=args.job_cores,
        job_mem_mb=args.job_mem_mb,
        job_gpus=args.job_gpus,
        inference_groups=(
            _inference_groups(args.configfile, args.job_cores) if args.configfile else None
        ),
    )
    print(f"SLURM profile written to {target}; run: snakemake --profile slurm")
    return 0


def _inference_groups(configfile: str, job_cores: int) -> dict[str, int]:
    """Tiles per group job of the GPU and the CPU inference tiles of a configuration."""
    from avhrrsm.config import load_yaml, validate_config
    from avhrrsm.requests import cpu_inference_group_size, inference_group_size

    config = validate_config(load_yaml(configfile), source=configfile)
    return {
        "inference": inference_group_size(config),
        "inference_cpu": cpu_inference_group_size(config, job_cores),
    }


def _cmd_bench(args: argparse.Namespace) -> int:
    from avhrrsm.ops.bench.harness import run_benchmarks

    configure_logging(None)
    run_benchmarks(
        _checkout(args), args.out, tuple(args.section) if args.section else None, args.run
    )
    print(Path(args.out, "RESULTS.md").read_text())
    return 0


def _run_folder(run: str | None, config_path: str) -> Path:
    """A run given as a folder (or its MANIFEST.json), as a run name, or the config's run."""
    if run and Path(run).exists():
        return Path(run)
    config = load_config(config_path)
    if run:
        return Path(config["results_dir"]) / run
    return run_dir(config)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from avhrrsm.ops.audit import verify_run

    report = verify_run(_run_folder(args.run, args.config))
    for problem in report.problems:
        print(problem)
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"{report.manifest}: {report.checked} outputs checked, {verdict}")
    return 0 if report.ok else 1


def _cmd_audit_lineage(args: argparse.Namespace) -> int:
    from avhrrsm.ops.audit import format_lineage, lineage, lineage_problems

    tree = lineage(args.file, check_bytes=args.check_bytes)
    if args.json:
        print(json.dumps(tree.as_dict(), indent=1))
    else:
        print("\n".join(format_lineage(tree)))
    problems = lineage_problems(tree)
    if problems:
        print(
            f"{len(problems)} input(s) not as recorded: "
            + ", ".join(f"{node.path} [{node.status}]" for node in problems[:5])
            + (" ..." if len(problems) > 5 else ""),
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_audit_rerun(args: argparse.Namespace) -> int:
    from avhrrsm.ops.audit import rerun

    configure_logging(None)
    report = rerun(
        _run_folder(args.run, args.config),
        _checkout(args).snakefile,
        year=args.year,
        tile=args.tile,
        scratch=args.scratch,
        keep=args.keep,
    )
    for warning in report.warnings:
        print(f"warning: {warning}")
    for result in report.results:
        verdict = "identical" if result.identical else f"DIFFERENT: {result.difference}"
        print(f"{result.path} ({result.rule}): {verdict}")
    what = f"tile {args.tile} of {args.year}" if args.tile else str(args.year)
    summary = "all identical" if report.identical else "differences found"
    print(f"rerun of {what}: {len(report.results)} outputs, {summary}")
    if args.keep:
        print(f"scratch folder kept: {report.scratch}")
    return 0 if report.identical else 1


# what ``add_subparsers`` returns: each command adds its parser to it
Subcommands = argparse._SubParsersAction  # noqa: SLF001


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avhrrsm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"avhrrsm {__version__}")
    parser.add_argument(
        "--workflow",
        metavar="DIR",
        help="the avhrrsm workflow folder (Snakefile, workflow/, profiles/) that bench, "
        "slurm-profile and audit rerun use (default: the current folder or the nearest above)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    for add in (_add_config, _add_synth, _add_inputs, _add_slurm_profile, _add_bench, _add_audit):
        add(commands)
    return parser


def _add_config(commands: Subcommands) -> None:
    """``avhrrsm config check``."""
    config_parser = commands.add_parser("config", help="configuration tools")
    config_commands = config_parser.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file against the schema")
    check.add_argument("config", nargs="?", default="config.yaml")
    check.set_defaults(func=_cmd_config_check)


def _add_synth(commands: Subcommands) -> None:
    """``avhrrsm synth``."""
    synth = commands.add_parser("synth", help="write the synthetic world of a config")
    synth.add_argument("--config", default="config.yaml")
    synth.add_argument("--out", help="target folder (default: {results_dir}/{run}/synthetic)")
    synth.add_argument("--threads", type=int, default=2)
    synth.add_argument("--log", help="also log to this file")
    synth.set_defaults(func=_cmd_synth)


def _add_inputs(commands: Subcommands) -> None:
    """``avhrrsm inputs check``."""
    inputs = commands.add_parser("inputs", help="input data tools")
    inputs_commands = inputs.add_subparsers(dest="inputs_command", required=True)
    scan = inputs_commands.add_parser(
        "check",
        help="scan every configured input for the configured years and region; exit 1 where "
        "a run would fail",
    )
    scan.add_argument("--configfile", default="config.yaml")
    scan.add_argument(
        "--check-bytes",
        action="store_true",
        help="also re-hash every raw input the config's finished run recorded (its MANIFEST.json "
        "and provenance records); exit 1 where any changed, e.g. replaced behind its mtime",
    )
    scan.set_defaults(func=_cmd_inputs_check)


def _add_slurm_profile(commands: Subcommands) -> None:
    """``avhrrsm slurm-profile``."""
    slurm = commands.add_parser(
        "slurm-profile",
        help="install profiles/slurm as the user's `slurm` profile (~/.config/snakemake/slurm)",
    )
    slurm.add_argument("--partition", default="", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--account", default="", help="SLURM account (default: none)")
    slurm.add_argument(
        "--status-command",
        default="",
        choices=["", "sacct", "squeue"],
        help="how the executor follows jobs (default: sacct where accounting runs)",
    )
    slurm.add_argument("--init-seconds", type=int, default=None, help="first status check after")
    slurm.add_argument(
        "--job-cores",
        type=int,
        default=GROUP_JOB_CORES,
        help=f"most cores one (group) job asks for (default {GROUP_JOB_CORES}: two such jobs "
        "and a GPU tile job's 2 threads fill a node of 32 cores)",
    )
    slurm.add_argument(
        "--job-mem-mb", type=int, default=128000, help="most memory one (group) job asks for"
    )
    slurm.add_argument(
        "--job-gpus",
        type=int,
        default=1,
        help="GPUs of one (group) job: a group's tiles share them",
    )
    slurm.add_argument(
        "--configfile",
        default="",
        help="the run's config: its inference tiles are grouped to its tile cost (default: as "
        "for the global config, profiles/default)",
    )
    slurm.add_argument("--dest", default="", help="profile folder (default: Snakemake's user dir)")
    slurm.set_defaults(func=_cmd_slurm_profile)


def _add_bench(commands: Subcommands) -> None:
    """``avhrrsm bench``."""
    bench = commands.add_parser(
        "bench", help="measure speed and memory; write benchmarks/results.json and RESULTS.md"
    )
    bench.add_argument("--out", default="benchmarks")
    bench.add_argument(
        "--section",
        action="append",
        choices=list(BENCH_SECTIONS),
        help="run only this section (repeatable)",
    )
    bench.add_argument(
        "--run", help="the finished run run_cost reads (default: results/default of the workflow)"
    )
    bench.set_defaults(func=_cmd_bench)


def _add_audit(commands: Subcommands) -> None:
    """``avhrrsm audit verify | lineage | rerun``."""
    audit = commands.add_parser("audit", help="reproducibility audits of a run")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    run_help = "run folder, its MANIFEST.json, or a run name (default: the config's run)"
    verify = audit_commands.add_parser(
        "verify", help="recompute every checksum against MANIFEST.json (exit 1 on a change)"
    )
    verify.add_argument("run", nargs="?", help=run_help)
    verify.add_argument("--config", default="config.yaml")
    verify.set_defaults(func=_cmd_audit_verify)
    trace = audit_commands.add_parser(
        "lineage", help="the chain from a file back to the raw inputs, from its provenance"
    )
    trace.add_argument("file")
    trace.add_argument("--json", action="store_true", help="print the lineage as JSON")
    trace.add_argument(
        "--check-bytes",
        "--check-raw",
        dest="check_bytes",
        action="store_true",
        help="re-hash every input (raw files and workflow outputs) against the record",
    )
    trace.set_defaults(func=_cmd_audit_lineage)
    again = audit_commands.add_parser(
        "rerun",
        help="re-execute a year's jobs (stack, samples, inference, product) or one tile's "
        "inference in a scratch folder and compare bytes with the originals (exit 1 on a change)",
    )
    again.add_argument("run", nargs="?", help=run_help)
    again.add_argument("--year", type=int, required=True)
    again.add_argument("--tile", help="only this tile's inference job (e.g. h35v09)")
    again.add_argument("--config", default="config.yaml")
    again.add_argument("--scratch", help="scratch folder (default: a new one beside the run)")
    again.add_argument("--keep", action="store_true", help="keep the scratch folder")
    again.set_defaults(func=_cmd_audit_rerun)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"avhrrsm: {err}", file=sys.stderr)
        return 2
    except AuditError as err:
        print(f"avhrrsm audit: {err}", file=sys.stderr)
        return 2
    except CheckoutNotFound as err:
        print(f"avhrrsm: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Faults and bad inputs against the real CLI: what the user sees, how fast, and what is left.

Each probe runs `ecg-platform ...` (two run `mlflow run`) as a subprocess in a fresh temporary
directory with its own SQLite store (`MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db`, created
before the probe so MLflow's first-use lines stay out of the output) and `--cache-dir`, on the
real excerpts in tests/data/mitdb. Per probe: the exit code, the lines printed and the last one
(what the user reads), whether a traceback was printed, wall and CPU seconds to fail (for the
signal probes: from the signal), the runs left RUNNING in the store (where any are, after one
follow-up command that opens the store, so that the platform's dead-process cleanup gets its
chance: `finetune` with nothing pretrained, which fails at once), and the processes still alive
3 s after the command exited (every process that carries the probe's marker variable in its
environment: children, grandchildren, daemons). The goals: exit code != 0, one line (none after
a kill -9, which leaves the command no chance to print), no traceback, under 10 s, no RUNNING
run, no orphan; a fault the platform should survive must instead end with exit code 0 (its
lines and seconds are not judged), and some probes check one more thing (the `check` column).
The last line is shown without a log line's date and time, with the probe's folder as <tmp>.

    python benchmarks/bench_faults.py [--out FILE] [--only PART_OF_A_NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
from entry import run_main
from mlflow import MlflowClient

from ecg_platform.tracking.model_serving import free_port
from ecg_platform.tracking.store import prepare_store

REPO = Path(__file__).resolve().parent.parent
EXCERPTS = REPO / "tests" / "data" / "mitdb"
BIN = Path(sys.executable).parent  # ecg-platform and mlflow of this environment
MARKER = "ECG_BENCH_PROBE"  # in every probe's environment: finds its processes, however started
TIMEOUT_S = 300.0  # a probe still running then is killed and reported as hanging
GOAL_S = 10.0
ORPHAN_GRACE_S = 3.0
LINE_CHARS = 90
LOG_TIME = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")  # MLflow's log lines start so
FOLLOW_UP = "ecg-platform finetune --patient 233 --data-dir {data} --cache-dir {tmp}/cache"


@dataclass(frozen=True)
class Interrupt:
    """Send `signal` once `runs` runs are RUNNING in the store and one of them has logged an
    epoch (training under way, a checkpoint written: a fixed delay after the run started was,
    on a loaded machine, sometimes before the first epoch)."""

    signal: signal.Signals
    runs: int = 1
    after_s: float = 1.0  # past the first epoch's metrics, into the next epoch


@dataclass(frozen=True)
class Probe:
    """One fault. `command` (split at spaces, then filled in), `env` and `cwd` may use {tmp}
    (the probe's folder), {data} (the excerpts), {repo} and {port} (a free one); `setup(tmp)`
    prepares the fault, `check(tmp)` tests what the probe must also hold: (passed, what it
    found). `succeeds`: a fault the command should survive (exit 0)."""

    name: str
    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    setup: Callable[[Path], object] | None = None
    interrupt: Interrupt | None = None
    check: Callable[[Path], tuple[bool, str]] | None = None
    cwd: str = "{tmp}"
    succeeds: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one probe showed; `misses` names each goal it did not meet."""

    name: str
    exit_code: int | None  # None: still running at TIMEOUT_S
    lines: int
    last_line: str
    traceback: bool
    seconds: float
    cpu_seconds: float | None  # None: a signal probe (its CPU time is mostly training)
    running_before: int  # runs RUNNING once the command ended
    running: int  # ... and after the follow-up command (run only where some were)
    orphans: int
    check: str
    misses: tuple[str, ...]


@dataclass(frozen=True)
class Finished:
    """How a command ended: exit code (None: hung), the lines it printed (after the signal, for a
    signal probe), wall seconds (from the signal) and CPU seconds (None for a signal probe)."""

    exit_code: int | None
    lines: list[str]
    seconds: float
    cpu_seconds: float | None


def _train(command_and_options: str) -> str:
    """A cheap command on the excerpts (patient 233, one epoch); the options given win (click
    keeps an option's last value)."""
    command, _, options = command_and_options.partition(" ")
    base = " --data-dir {data} --cache-dir {tmp}/cache --patient 233 --epochs 1 "
    return "ecg-platform " + command + base + options


TRAIN = _train("individual")
OWN_DATA = _train("individual --data-dir {tmp}/data")  # a damaged copy of record 233
RESUMABLE = _train("individual --epochs 60 --early-stopping false")
URI = "MLFLOW_TRACKING_URI"


def _copy_record(tmp: Path, suffixes: str) -> Path:
    """Some of record 233's files in tmp/data."""
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    for suffix in suffixes.split():
        shutil.copyfile(EXCERPTS / f"233{suffix}", data / f"233{suffix}")
    return data


def _truncated_dat(tmp: Path) -> None:
    dat = _copy_record(tmp, ".hea .dat .atr") / "233.dat"
    dat.write_bytes(dat.read_bytes()[:1000])


def _empty_atr(tmp: Path) -> None:
    data = _copy_record(tmp, ".hea .dat")
    (data / "233.atr").write_bytes(b"\x00\x00")  # WFDB's end-of-file marker alone


def _damaged_cache(tmp: Path) -> None:
    """A cache whose every entry was cut short (a full disk, a crash mid-write)."""
    summary = ("data", "summary", "--data-dir", str(EXCERPTS), "--cache-dir", str(tmp / "cache"))
    subprocess.run([BIN / "ecg-platform", *summary], check=True, capture_output=True)
    for entry in (tmp / "cache").rglob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:500])


def _pickle_model(tmp: Path) -> None:
    """A pickle-format MLflow model whose unpickling creates tmp/pwned (stands in for any code);
    built as tests/test_reliability.py builds it."""
    import mlflow.pytorch
    import torch

    class Payload(torch.nn.Linear):
        def __reduce__(self) -> tuple:
            return (open, (str(tmp / "pwned"), "w"))

    # explicit requirements: inferring them would load (and so trigger) the model while saving
    mlflow.pytorch.save_model(
        Payload(2, 1), tmp / "model", serialization_format="pickle", pip_requirements=["torch"]
    )


def _trained_model(tmp: Path) -> None:
    """`ecg-individual-233` version 1 in the probe's store (one epoch on the excerpt)."""
    env = _environment(tmp, {})
    subprocess.run(_argv(TRAIN, _values(tmp)), cwd=tmp, env=env, check=True, capture_output=True)


def _text_csv(tmp: Path) -> None:
    """A trained model, and a CSV that holds words where the samples should be."""
    _trained_model(tmp)
    (tmp / "text.csv").write_text("mV\n" + "n/a\n" * 3600)


def _no_marker(tmp: Path) -> tuple[bool, str]:
    written = (tmp / "pwned").exists()
    return not written, f"marker written: {'yes' if written else 'no'}"


KILL_9 = Interrupt(signal.SIGKILL)
TRAINING = "metrics.epoch_seconds > 0"  # a run that has logged an epoch


def _killed_first(tmp: Path) -> None:
    """The same training command, killed with -9 during its epochs, in this probe's folder (no
    follow-up: the rerun is the next command that opens the store)."""
    _run_command(Probe("kill -9", RESUMABLE, interrupt=KILL_9), tmp, _values(tmp))


def _resumed(tmp: Path) -> tuple[bool, str]:
    """The rerun should continue the killed run: one run, the same id, FINISHED."""
    client = MlflowClient(_store(tmp))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    runs.sort(key=lambda run: run.info.start_time)
    statuses = ", ".join(f"{run.info.run_id[:8]} {run.info.status}" for run in runs)
    resumed = len(runs) == 1 and runs[0].info.status == "FINISHED"
    return resumed, f"same run id: {'yes' if resumed else 'no'} ({statuses})"


PROBES = [
    # values refused while the options are parsed
    Probe("--lr nan", _train("individual --lr nan")),
    Probe("--lr -1", _train("individual --lr -1")),
    Probe("pretrain --weight-decay nan", _train("pretrain --weight-decay nan")),
    Probe("finetune --encoder-lr-scale nan", _train("finetune --encoder-lr-scale nan")),
    Probe("--epochs 0", _train("individual --epochs 0")),
    Probe("--epochs 2.5", _train("individual --epochs 2.5")),
    Probe("--batch-size 0", _train("individual --batch-size 0")),
    Probe("pretrain --seed -1", _train("pretrain --seed -1")),
    Probe("--workers 0", _train("individual --workers 0")),
    Probe("--executor nope", _train("individual --executor nope")),
    Probe("grid-search --grid-lrs 0.01,nan", _train("grid-search --grid-lrs 0.01,nan")),
    Probe("--patient ,,", _train("individual --patient ,,")),
    Probe("--patient abc", _train("individual --patient abc")),
    Probe("--patient 999 (not in the data)", _train("individual --patient 999")),
    Probe("--preset nope", _train("individual --preset nope")),
    Probe("--label-set aami on the paper preset", _train("individual --label-set aami")),
    # the data
    Probe("--data-dir /nonexistent", _train("individual --data-dir /nonexistent")),
    Probe("data dir without records", OWN_DATA, setup=lambda tmp: (tmp / "data").mkdir()),
    Probe("truncated .dat", OWN_DATA, setup=_truncated_dat),
    Probe("empty .atr", OWN_DATA, setup=_empty_atr),
    Probe("missing .hea", OWN_DATA, setup=lambda tmp: _copy_record(tmp, ".dat .atr")),
    Probe("missing .atr", OWN_DATA, setup=lambda tmp: _copy_record(tmp, ".hea .dat")),
    Probe("unwritable --cache-dir", _train("individual --cache-dir /proc/ecg-cache")),
    Probe(
        "damaged cache entries (tolerated: rebuilt)",
        "ecg-platform data summary --data-dir {data} --cache-dir {tmp}/cache",
        setup=_damaged_cache,
        succeeds=True,
    ),
    Probe(
        "data export to an unwritable path",
        "ecg-platform data export --data-dir {data} --out /proc/windows.npz",
    ),
    # the tracking store
    Probe("MLFLOW_TRACKING_URI=foo://bar", TRAIN, {URI: "foo://bar"}),
    Probe("dead tracking server", TRAIN, {URI: "http://127.0.0.1:{port}"}),
    Probe(
        "store file that is not a database",
        TRAIN,
        {URI: "sqlite:///{tmp}/broken.db"},
        setup=lambda tmp: (tmp / "broken.db").write_bytes(b"not a database\n" * 100),
    ),
    Probe("unwritable store path", TRAIN, {URI: "sqlite:////proc/nope.db"}),
    # /proc takes no new file even from root (this machine runs as root: no mode stops it)
    Probe("default store, cwd takes no files (/proc)", TRAIN, {URI: ""}, cwd="/proc"),
    Probe(
        "Ray cluster with a SQLite store",
        _train("individual --executor ray --ray-address ray://127.0.0.1:{port}"),
    ),
    # models
    Probe("finetune, nothing pretrained yet", _train("finetune")),
    Probe(
        "finetune --pretrained models:/nope/abc", _train("finetune --pretrained models:/nope/abc")
    ),
    Probe("finetune --pretrained foo://bar", _train("finetune --pretrained foo://bar")),
    Probe("finetune --pretrained /nonexistent.pt", _train("finetune --pretrained /nonexistent.pt")),
    Probe(
        "finetune --pretrained pickle model (runs code)",
        _train("finetune --pretrained {tmp}/model --force true"),
        setup=_pickle_model,
        check=_no_marker,
    ),
    Probe(
        "report --parents deadbeef",
        "ecg-platform report --data-dir {data} --cache-dir {tmp}/cache --patient 233"
        " --parents deadbeef --out {tmp}/report",
    ),
    Probe(
        "predict a missing record",
        "ecg-platform predict --model models:/ecg-individual-233/1 --record {tmp}/nope"
        " --out {tmp}/predict",
        setup=_trained_model,
    ),
    Probe(
        "predict --csv of text",
        "ecg-platform predict --model models:/ecg-individual-233/1 --csv {tmp}/text.csv"
        " --fs 360 --out {tmp}/predict",
        setup=_text_csv,
    ),
    Probe(
        "predict --model models:/nope/1",
        "ecg-platform predict --model models:/nope/1 --record {data}/233 --out {tmp}/predict",
    ),
    Probe("pipeline --model models:/nope/1", "ecg-platform pipeline --model models:/nope/1"),
    # MLflow Projects (slow: a whole `mlflow run` each)
    Probe(
        "mlflow run -e pretrain -P epochs=abc",
        "mlflow run {repo} -e pretrain -P epochs=abc -P data_dir={data} --env-manager local",
    ),
    Probe(
        "mlflow run -e individual without patient",
        "mlflow run {repo} -e individual -P data_dir={data} --env-manager local",
    ),
    # killed during training
    Probe("SIGTERM during training", RESUMABLE, interrupt=Interrupt(signal.SIGTERM)),
    Probe("kill -9 during training", RESUMABLE, interrupt=KILL_9),
    Probe(
        "kill -9 of --workers 2 (3 patients)",
        RESUMABLE + " --patient all --workers 2 --epochs 500",
        interrupt=Interrupt(signal.SIGKILL, runs=3),
    ),
    Probe(
        "rerun after kill -9 (tolerated: resumes)",
        RESUMABLE,
        setup=_killed_first,
        check=_resumed,
        succeeds=True,
    ),
]


def main() -> None:
    args = _arguments()
    chosen = [p for p in PROBES if not args.only or any(part in p.name for part in args.only)]
    print(f"{len(chosen)} probes, each in a fresh folder with its own store; goals: exit != 0,")
    print(f"one line, no traceback, < {GOAL_S:.0f} s, no RUNNING run, no orphan process")
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        template = Path(folder) / "mlflow.db"
        prepare_store(f"sqlite:///{template}")  # every probe's store starts as a copy
        outcomes = []
        for number, probe in enumerate(chosen, 1):
            with tempfile.TemporaryDirectory(prefix="probe-", dir=folder) as tmp:
                shutil.copyfile(template, Path(tmp) / "mlflow.db")
                outcome = _execute(probe, Path(tmp))
            outcomes.append(outcome)
            print(f"[{number}/{len(chosen)}] {_row(outcome)}", flush=True)
    table = _table(outcomes)
    met = sum(not outcome.misses for outcome in outcomes)
    summary = f"{len(outcomes)} probes, {met} meet every goal"
    print(f"\n{table}\n\n{summary}")
    if args.out:
        Path(args.out).write_text(f"{table}\n\n{summary}\n")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="", help="also write the markdown table to this file")
    parser.add_argument(
        "--only", action="append", help="run the probes whose name contains this (repeatable)"
    )
    return parser.parse_args()


def _execute(probe: Probe, tmp: Path) -> Outcome:
    """Run `probe` in `tmp` and measure what it showed and left."""
    if probe.setup:
        probe.setup(tmp)
    values = _values(tmp)
    finished = _run_command(probe, tmp, values)
    orphans = _orphans(tmp)
    running_before = running = _running(tmp)
    if running:
        env = _environment(tmp, {})
        subprocess.run(_argv(FOLLOW_UP, values), cwd=tmp, env=env, capture_output=True)
        running = _running(tmp)
    passed, found = probe.check(tmp) if probe.check else (True, "")
    outcome = Outcome(
        probe.name,
        finished.exit_code,
        len(finished.lines),
        _shorter(finished.lines[-1], tmp) if finished.lines else "",
        any(line.startswith("Traceback") for line in finished.lines),
        finished.seconds,
        finished.cpu_seconds,
        running_before,
        running,
        orphans,
        found,
        (),
    )
    return replace(outcome, misses=_misses(outcome, probe, passed))


def _shorter(line: str, tmp: Path) -> str:
    """`line` without a log line's date and time, the probe's folder and the excerpts' path
    abbreviated: so that the message shows in the table's column."""
    line = LOG_TIME.sub("", line)
    return line.replace(str(tmp), "<tmp>").replace(str(EXCERPTS), "tests/data/mitdb")


def _run_command(probe: Probe, tmp: Path, values: Mapping[str, object]) -> Finished:
    """Start the probe's command in its folder with its environment, send its signal if it has
    one, and wait for it to end (killing it at TIMEOUT_S)."""
    argv = _argv(probe.command, values)
    env = _environment(tmp, {key: value.format(**values) for key, value in probe.env.items()})
    log = tmp / "output.txt"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as sink:
        started = time.perf_counter()
        command = subprocess.Popen(
            argv,
            cwd=probe.cwd.format(**values),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        offset = 0
        if probe.interrupt:
            started = _interrupt(command, probe.interrupt, _store(tmp))
            offset = log.stat().st_size  # count only what the fault printed
        try:
            code: int | None = command.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            command.kill()
            command.wait()
            code = None
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    text = log.read_bytes()[offset:].decode(errors="replace")
    # a terminal shows what the last carriage return left of each line (progress bars)
    shown = (line.rsplit("\r", 1)[-1].strip() for line in text.split("\n"))
    lines = [line for line in shown if line]
    return Finished(code, lines, seconds, None if probe.interrupt else cpu)


def _values(tmp: Path) -> dict[str, object]:
    """What the placeholders of a probe's command, environment and folder stand for."""
    return {"tmp": str(tmp), "data": str(EXCERPTS), "repo": str(REPO), "port": free_port()}


def _argv(command: str, values: Mapping[str, object]) -> list[str]:
    """`command` split at its spaces, placeholders filled in, the program of this environment."""
    program, *args = command.split()
    return [str(BIN / program), *(arg.format(**values) for arg in args)]


def _environment(tmp: Path, changes: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with the probe's store, marker and changes; no data or cache
    directory from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("ECG_DATA_DIR", "ECG_CACHE_DIR")}
    env |= {"MLFLOW_TRACKING_URI": _store(tmp), MARKER: str(tmp)}
    return env | dict(changes)


def _store(tmp: Path) -> str:
    return f"sqlite:///{tmp}/mlflow.db"


def _interrupt(command: subprocess.Popen, interrupt: Interrupt, uri: str) -> float:
    """Wait for `interrupt.runs` RUNNING runs, then send its signal; when it was sent."""
    deadline = time.perf_counter() + TIMEOUT_S
    while command.poll() is None and time.perf_counter() < deadline:
        if _count_running(uri) >= interrupt.runs and _count_running(uri, TRAINING):
            time.sleep(interrupt.after_s)
            break
        time.sleep(0.5)
    command.send_signal(interrupt.signal)
    return time.perf_counter()


def _running(tmp: Path) -> int:
    return _count_running(_store(tmp))


def _count_running(uri: str, condition: str = "") -> int:
    """Runs RUNNING in any experiment of the store at `uri` (that also meet `condition`)."""
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    query = " and ".join(filter(None, ["attributes.status = 'RUNNING'", condition]))
    return len(client.search_runs(experiments, query))


def _orphans(tmp: Path) -> int:
    """Processes of the probe still alive `ORPHAN_GRACE_S` after it exited; each is then ended
    (by its id), so that no probe leaves work behind for the next."""
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while (alive := _probe_processes(tmp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    return len(alive)


def _probe_processes(tmp: Path) -> list[psutil.Process]:
    """Live processes (not zombies) whose environment carries the probe's marker."""
    return [process for process in psutil.process_iter() if _carries(process, str(tmp))]


def _carries(process: psutil.Process, marker: str) -> bool:
    try:
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and process.environ().get(MARKER) == marker
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone meanwhile, or not ours to read
        return False


def _misses(outcome: Outcome, probe: Probe, passed: bool) -> tuple[str, ...]:
    """The goals `outcome` did not meet."""
    misses = []
    if outcome.exit_code is None:
        misses.append(f"hung > {TIMEOUT_S:.0f} s")
    elif probe.succeeds != (outcome.exit_code == 0):
        misses.append(f"exit {outcome.exit_code}")
    # a command killed with -9 cannot print: any line is from a process that outlived it
    expected = 0 if probe.interrupt and probe.interrupt.signal == signal.SIGKILL else 1
    if not probe.succeeds and outcome.lines != expected:
        misses.append(f"{outcome.lines} lines")
    if outcome.traceback:
        misses.append("traceback")
    if not probe.succeeds and outcome.seconds >= GOAL_S:
        misses.append(f"{outcome.seconds:.1f} s")
    if outcome.running:
        misses.append(f"{outcome.running} RUNNING")
    if outcome.orphans:
        misses.append(f"{outcome.orphans} orphans")
    if not passed:
        misses.append(outcome.check.split(" (")[0])
    return tuple(misses)


COLUMNS = ("probe", "exit", "lines", "last line the user sees", "traceback", "s", "cpu s")
COLUMNS += ("RUNNING", "orphans", "check", "goals")


def _cells(outcome: Outcome) -> list[str]:
    last = outcome.last_line
    last = last if len(last) <= LINE_CHARS else last[: LINE_CHARS - 3] + "..."
    cpu = "-" if outcome.cpu_seconds is None else f"{outcome.cpu_seconds:.1f}"
    running = str(outcome.running)
    if outcome.running_before != outcome.running:
        running = f"{outcome.running_before} -> {outcome.running}"
    return [
        outcome.name,
        "hung" if outcome.exit_code is None else str(outcome.exit_code),
        str(outcome.lines),
        f"`` {last} ``" if last else "",
        "yes" if outcome.traceback else "no",
        f"{outcome.seconds:.1f}",
        cpu,
        running,
        str(outcome.orphans),
        outcome.check,
        "met" if not outcome.misses else "missed: " + ", ".join(outcome.misses),
    ]


def _row(outcome: Outcome) -> str:
    return " | ".join(_cells(outcome))


def _table(outcomes: list[Outcome]) -> str:
    """The markdown table of every outcome."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS), *(_cells(outcome) for outcome in outcomes)]
    return "\n".join(
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows
    )


if __name__ == "__main__":
    run_main(main)

"""The local runner's console: a story a person can follow, and the full log in a file.

While a run goes, everything the process and its Beam workers write (Python and absl logging,
TensorFlow's C++ messages, the workers' output) goes to HOME/logs/run-<time>.log; the terminal
shows each component starting and finishing with its seconds (or "from cache"), what kiko's own
code logs (inputs, epochs, scores, warnings), errors, a progress line when a component has been
quiet for PROGRESS_EVERY_S seconds, and at the end the run's summary.
"""

import contextlib
import datetime
import logging
import os
import re
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Dict, Iterator, List, Optional, TextIO

from kiko.pipeline import configs

PROGRESS_EVERY_S = 10.0
_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution \d+ is used\.")
_FAILED = re.compile(r"Execution \d+ failed\.")
# Beam relays every worker log line through this logger; a worker's error also fails the step,
# and the story tells that once, from the exception.
_BEAM_WORKER_RELAY = "apache_beam.runners.portability.local_job_service"
# Beam's FnApiRunner (the DirectRunner's engine, in this process) names each bundle's fused
# stage at DEBUG level on this logger: the only progress it reports while a step runs.
_BEAM_BUNDLES = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"
_TRANSFORM = re.compile(r"ref_AppliedPTransform_([^)+]+?)(?:_\d+)?\)")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Warnings given before the story began (libraries' notices as they are imported), for its log.
_HELD: List[str] = []
_SHOW_WARNING = warnings.showwarning


def _hold(message, category, filename, lineno, file=None, line=None) -> None:
    _HELD.append(warnings.formatwarning(message, category, filename, lineno, line))


def hold_warnings() -> None:
    """Keeps Python warnings off the terminal until `story` begins, which writes them to the
    run's log (a run that never begins drops them: a refusal is one line)."""
    warnings.showwarning = _hold


def drop_held_warnings() -> str:
    """Shows warnings again; returns (and forgets) the ones held so far."""
    if warnings.showwarning is _hold:
        warnings.showwarning = _SHOW_WARNING
    held = "".join(_HELD)
    _HELD.clear()
    return held


def _ours(record: logging.LogRecord) -> bool:
    """Whether kiko's code (not a library) logged the record."""
    path = os.path.abspath(record.pathname)
    return path.startswith(_REPO + os.sep) and "site-packages" not in path


class Console(logging.Handler):
    """Turns log records into the lines a person reads on the terminal."""

    def __init__(self, terminal: TextIO):
        super().__init__(logging.DEBUG)  # DEBUG: Beam names its bundles at that level
        self.terminal = terminal
        self.lock_ = threading.Lock()
        self.component: Optional[str] = None
        self.latest: Optional[str] = None  # the component that started last
        self.hushed = False
        self.started = self.last_line = time.monotonic()
        self.cached = False
        self.bundles = 0
        self.stage = ""

    def say(self, text: str) -> None:
        with self.lock_:
            self.terminal.write(text + "\n")
            self.terminal.flush()
            self.last_line = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        if self.hushed:
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return
        if record.name == _BEAM_BUNDLES:
            self.bundles += 1
            # A fused stage names its transforms: show the first and the last.
            names = ["/".join(t.replace("-", "/").split("/")[:3])
                     for t in _TRANSFORM.findall(message)]
            if names:
                self.stage = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
            return
        running, finished = _RUNNING.match(message), _FINISHED.match(message)
        if running:
            self.component, self.cached, self.bundles, self.stage = running.group(1), False, 0, ""
            self.latest = self.component
            self.started = time.monotonic()
            self.say(f"  {self.component:<22} started")
        elif finished:
            seconds = time.monotonic() - self.started
            state = "from cache" if self.cached else f"done in {seconds:.1f} s"
            self.say(f"  {finished.group(1):<22} {state}")
            self.component = None
        elif _CACHED.match(message):
            self.cached = True
        elif _FAILED.match(message) and self.component:
            self.say(f"  {self.component:<22} FAILED after {time.monotonic() - self.started:.1f} s")
            self.component = None
        elif record.name == _BEAM_WORKER_RELAY:
            return
        elif record.levelno >= logging.ERROR or (record.levelno >= logging.INFO
                                                 and _ours(record)):
            first = (message.strip().splitlines() or [""])[0]
            prefix = "    " if record.levelno < logging.WARNING else \
                f"  {record.levelname.lower()}: "
            self.say(prefix + first)

    def heartbeat(self) -> None:
        """A progress line when a component has been quiet for PROGRESS_EVERY_S."""
        now = time.monotonic()
        if self.hushed or self.component is None or now - self.last_line < PROGRESS_EVERY_S:
            return
        detail = f", Beam bundle {self.bundles} ({self.stage})" if self.bundles else ""
        self.say(f"  {self.component:<22} running {now - self.started:.0f} s{detail}")

    def failed(self, error: BaseException) -> str:
        """Call in an `except` block: the traceback goes to the log, one line to the terminal;
        returns that line (Beam wraps a worker's error: its last line is the cause)."""
        traceback.print_exc()
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        text = lines[-1] if lines else type(error).__name__
        self.say(f"  failed: {text}")
        return text

    def hush(self) -> None:
        """Tells no more of the run's log records (a signal stops the run: the errors of its
        dying workers are no news); its own lines still reach the terminal."""
        self.hushed = True

    def interrupted(self, signum: int, stopped_workers) -> str:
        """Call in an `except` block once a signal stopped the run: the traceback and the
        stopped workers go to the log, one line to the terminal; returns that line."""
        traceback.print_exc()
        print(f"kiko: stopped by signal {signum}; workers ended: {list(stopped_workers)}",
              file=sys.stderr)
        where = (f"during {self.component}" if self.component
                 else f"after {self.latest}" if self.latest else "before its first step")
        text = f"interrupted {where}; re-run resumes from cache"
        self.say(f"  {text}")
        return text

    def tell_summary(self, summary: Dict[str, Any]) -> None:
        """The run's summary (a `kiko.metadata.runs.run_summary`), after its story."""
        from kiko.summary import summary_lines

        self.say("\n".join(["", "run summary"] + summary_lines(summary)))


def _copy_into(source: int, log_fd: int) -> None:
    """Copies everything read from `source` into the log file until end of file; a failed
    write (a full disk) loses those bytes, never blocks or fails the writers."""
    with os.fdopen(source, "rb", buffering=0) as pipe:
        for block in iter(lambda: pipe.read(65536), b""):
            try:
                os.write(log_fd, block)
            except OSError:
                pass


@contextlib.contextmanager
def story(home: str) -> Iterator[Console]:
    """Within the block, the process's output goes to a new log file under `home` and the
    terminal gets the story told by the Console it yields."""
    log_dir = configs.Paths(home).log_dir
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S.log"))
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    saved = (os.dup(1), os.dup(2))
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal.write(f"kiko run: home {home}\n  full log: {log_path}\n")
    # C++ messages and worker subprocesses inherit descriptors 1 and 2: they get a pipe, which a
    # thread copies into the log. A write to the log file itself can fail (a full disk), and a
    # Beam worker whose stderr write fails never reports its error: the run would hang.
    pipe_read, pipe_write = os.pipe()
    copier = threading.Thread(target=_copy_into, args=(pipe_read, log_fd), name="kiko-log",
                              daemon=True)
    copier.start()
    os.dup2(pipe_write, 1)
    os.dup2(pipe_write, 2)
    os.close(pipe_write)
    sys.stderr.write(drop_held_warnings())  # into the log, like every later one
    handler = Console(terminal)
    # Python logging (libraries, absl, kiko) into the log file, whatever handlers exist.
    to_log = logging.StreamHandler(sys.stderr)
    to_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root, beam = logging.getLogger(), logging.getLogger(_BEAM_BUNDLES)
    if not any(isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.__stderr__)
               for h in root.handlers):  # else that handler already writes into the log
        root.addHandler(to_log)
    root.addHandler(handler)
    beam_state = (beam.level, beam.propagate)
    beam.setLevel(logging.DEBUG)
    beam.propagate = False  # its bundle lines feed the progress line, not the log
    beam.addHandler(handler)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(1.0):
            handler.heartbeat()

    thread = threading.Thread(target=beat, name="kiko-progress", daemon=True)
    thread.start()
    try:
        yield handler
    finally:
        done.set()
        thread.join()
        root.removeHandler(handler)
        root.removeHandler(to_log)
        beam.removeHandler(handler)
        beam.setLevel(beam_state[0])
        beam.propagate = beam_state[1]
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        copier.join(timeout=10)  # the pipe closes when the last writer (workers too) is gone
        for fd in (*saved, log_fd):
            os.close(fd)
        terminal.write(f"  full log: {log_path}\n")
        terminal.close()


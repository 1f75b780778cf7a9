"""Child processes of the tests and benchmarks: stopping a process group, draining a pipe."""

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO


def stop_process_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM the process's group, then SIGKILL what is left of it after `grace_seconds`.

    `process` must lead its own group (started with start_new_session=True), so that its
    children (run workers, code servers, browser helpers) end with it.
    """
    group = process.pid  # start_new_session: the group id is the leader's pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(group, signal.SIGKILL)  # the leader if it ignored SIGTERM, and stragglers in the group
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def copy_stream_to_file(stream: IO[bytes], path: Path) -> threading.Thread:
    """Copy a pipe into a file on a daemon thread, so the writer never blocks on a full pipe."""

    def copy() -> None:
        with path.open("ab") as sink:
            for line in iter(stream.readline, b""):
                sink.write(line)
                sink.flush()

    thread = threading.Thread(target=copy, name=f"copy to {path.name}", daemon=True)
    thread.start()
    return thread

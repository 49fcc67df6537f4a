"""Drive a vLLM OpenAI server on loopback: start and stop it by PID, stream completions (cancelling
some mid-stream), read its counters and specplug's state trace.

Used by the serving tests (``tests/vllm/test_vllm_serving.py``) and the ``churn`` suite kind (``benchmarks/suites/vllm_churn.toml``).
It never imports vllm: the server is a child process (``python -m vllm.entrypoints.openai.api_server``).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Completion", "Server", "read_trace", "start_server", "stream_completion"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server; :meth:`stop` ends it and its engine-core child by process group (PID)."""

    process: subprocess.Popen
    port: int
    model: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str, timeout: float = 10) -> str:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read().decode()

    def counters(self) -> dict[str, float]:
        """``/metrics`` samples summed over labels, e.g. ``vllm:num_requests_running``."""
        totals: dict[str, float] = {}
        for line in self.get("/metrics").splitlines():
            if line.startswith("vllm:"):
                name = line.split("{", 1)[0].split(" ", 1)[0]
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return totals

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(
    model: str,
    workdir: str | Path,
    speculative_config: dict | None = None,
    additional_config: dict | None = None,
    env: dict[str, str] | None = None,
    max_num_seqs: int = 32,
    max_model_len: int = 512,
    timeout: float = 600,
) -> Server:
    """Start the OpenAI server on 127.0.0.1 (float32, eager, 1 GiB KV cache) and wait until healthy.

    Its log goes into ``workdir``; its vLLM cache folder is the one every job of this process shares
    (:func:`specplug.integrations.vllm.jobs.session_cache_root`)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager",
        "--max-model-len", str(max_model_len), "--max-num-seqs", str(max_num_seqs), "--seed", "0",
    ]
    if speculative_config:
        cmd += ["--speculative-config", json.dumps(speculative_config)]
    if additional_config:
        cmd += ["--additional-config", json.dumps(additional_config)]
    from specplug.integrations.vllm.jobs import session_cache_root

    full_env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CACHE_ROOT=str(session_cache_root()))
    full_env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server runs its engine core in a child
    full_env.update(env or {})
    log_path = workdir / f"server-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, port, model, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise RuntimeError(f"vLLM server exited {process.returncode}:\n{server.log()[-4000:]}")
        try:
            server.get("/health", timeout=2)
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"vLLM server not healthy after {timeout:.0f} s:\n{server.log()[-4000:]}") from None
            time.sleep(1)


@dataclass
class Completion:
    """One streamed completion as the client saw it."""

    token_ids: list[int] = field(default_factory=list)
    chunks: int = 0
    finish_reason: str | None = None  # "length", "stop", ... when the stream ended normally
    cancelled: bool = False  # the client closed the stream after ``cancel_after`` chunks
    error: str | None = None  # an HTTP error status and body


def stream_completion(
    server: Server,
    prompt: list[int],
    max_tokens: int,
    cancel_after: int | None = None,
    timeout: float = 120,
    **params: Any,
) -> Completion:
    """POST a streaming ``/v1/completions`` (greedy, ``ignore_eos`` unless overridden) and read it.

    With ``cancel_after``, the client closes the connection after that many chunks, as a user who
    stops a generation does; vLLM then aborts the request.
    """
    body = {"model": server.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "ignore_eos": True, "stream": True, "return_token_ids": True, **params}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    out = Completion()
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            out.error = f"{response.status} {response.read().decode(errors='replace')}"
            return out
        while True:
            line = response.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                out.error = json.dumps(chunk["error"])
                break
            for choice in chunk.get("choices", []):
                out.token_ids += choice.get("token_ids") or []
                out.finish_reason = choice.get("finish_reason") or out.finish_reason
            out.chunks += 1
            if cancel_after is not None and out.chunks >= cancel_after and out.finish_reason is None:
                out.cancelled = True
                break
    finally:
        conn.close()  # for a cancelled stream: the disconnect vLLM turns into an abort
    return out


def read_trace(folder: str | Path, event: str | None = None) -> list[dict]:
    """The records of specplug's state trace (``SPECPLUG_VLLM_TRACE``), every process, file order."""
    records = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if event is None or record.get("event") == event:
                records.append(record)
    return records

"""Hostile connections against a real uvicorn on 127.0.0.1 (issue 26, round two).

The server is the production one: serving.server.uvicorn_config over create_app, run
by uvicorn.Server in a thread of this process, talked to over real sockets. The model is a small
recommender fitted here and served through the real ModelHolder (a source that hands it over
instead of the MLflow registry). What is pinned:

- a body slower than body_timeout_seconds gets 408 before it has all arrived (the limit is a
  deadline for the whole body, not for each read);
- a connection that sends nothing, and one that trickles its request head, is closed by the
  server (head_timeout_seconds), on a new connection and after a keep-alive response;
- /health answers 200 within 1 s while 300 idle connections are open, from one client address
  (the per-client bound evicts that client's idle connections) and from 300 addresses of
  127.0.0.0/8 (idle connections do not count against the requests in flight);
- a batch request scores off the event loop: /health answers while the batch is being scored;
  beyond limit_concurrency requests in flight, /health still answers (others get 503);
- a request head larger than max_head_bytes is cut off (431), never read whole;
- `recomart recommend` on a truncated model file names the file, without a traceback.

The only time bound asserted is the issue's own: /health within 1 s (it takes milliseconds).
The other tests assert what happened in which order (the server answered before the body or the
head was complete, the connection ended); their socket timeouts only stop a test that would
otherwise wait for ever on a server that never closes.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson
import pytest
import uvicorn
from conftest import config_for, small_config, with_code_under_test

from models_ml import families, package
from models_ml.ids import Vocabulary
from models_ml.recommender import Recommender
from recomart.bench import synthetic_model
from recomart_core.schema import ITEM
from serving.app import create_app
from serving.holder import FixedSource, ModelHolder
from serving.server import uvicorn_config
from serving.settings import API_KEY_HEADER, ServeSettings
from serving.snapshot import ModelInfo, ServingModel

SPEC = synthetic_model.Spec(n_users=600, n_items=120, n_interactions=8_000, factors=8)
INFO = ModelInfo(name="m", version="1", alias="champion", run_id=None, trained_at=None,
                 data_cutoff=None, holdout_cutoff=None)  # fmt: skip
KEY = "s3cret"
NEVER = 30.0  # socket timeout: only a server that never answers or closes reaches it
IDLE = 300  # the number of silent connections
HEALTH_BOUND = 1.0  # the bound for /health while they are open (it takes ms)


# ------------------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def fitted() -> tuple[Recommender, object]:
    rows, catalog, users, items = synthetic_model.interactions(SPEC)
    model = families.from_flat(n_factors=SPEC.factors, iterations=2, seed=1).fit(
        rows, catalog, users=Vocabulary(users), items=Vocabulary(items)
    )
    return model, catalog.assign(**{ITEM: model.items.decode(catalog[ITEM])})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(tmp_path: Path, served: ServingModel, **limits) -> Iterator[int]:
    """A real uvicorn with the production configuration on 127.0.0.1; yields its port."""
    cfg = config_for(tmp_path, small_config(tmp_path))
    settings = ServeSettings(poll_seconds=0, host="127.0.0.1", port=_free_port(), **limits)
    holder = ModelHolder(FixedSource(served), settings)
    server = uvicorn.Server(uvicorn_config(create_app(cfg, settings, holder), settings, False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield settings.port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(NEVER)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """The next response on sock: (status, headers lower-cased, body)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def request(port: int, method: str, path: str, body: bytes = b"", key: str | None = None,
            source: str = "127.0.0.1") -> tuple[int, dict, bytes]:  # fmt: skip
    head = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}"]
    if body:
        head.append("Content-Type: application/json")
    if key:
        head.append(f"{API_KEY_HEADER}: {key}")
    with connect(port, source) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return answer(sock)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed sock (EOF or reset) without waiting: False while open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(NEVER)


def read_to_eof(sock: socket.socket) -> bytes:
    """What the server sends until it closes sock (socket.timeout if it never does)."""
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# ------------------------------------------------------------------------------ item 7: the body
def test_a_slow_body_gets_408_before_it_has_all_arrived(tmp_path: Path, fitted) -> None:
    """Content-Length 60, one byte every 0.25 s: each read comes well within the 1 s limit, the
    whole body would take 15 s. The server answers 408 after ~1 s of it and closes."""
    model, items = fitted
    served = ServingModel(model, items, INFO, max_k=20, precompute_max_users=0)
    length = 60
    with serving(tmp_path, served, api_key=KEY, body_timeout_seconds=1.0) as port:
        sock = connect(port)
        head = (
            f"POST /recommendations/batch HTTP/1.1\r\nHost: test\r\n{API_KEY_HEADER}: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sent = 0
        sock.settimeout(0.25)  # the pace of the trickle: one byte per wait without an answer
        first = b""
        while sent < length:
            try:
                first = sock.recv(4096)
                break  # the server answered (or closed) before the body was complete
            except TimeoutError:
                sock.sendall(b" ")
                sent += 1
        sock.settimeout(NEVER)
        rest = read_to_eof(sock)  # the server closes the connection after its answer
        sock.close()
    assert sent < length, f"the whole body was accepted at one byte per 0.25 s: {first + rest!r}"
    status_line, _, body = (first + rest).partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), first + rest
    assert b"connection: close" in body.lower()
    assert b"request body not received within 1 s" in body


# ------------------------------------------------------------------------------ item 8: heads
def test_silent_and_trickled_connections_are_closed(tmp_path: Path, fitted) -> None:
    """head_timeout_seconds = 1: a connection that sends nothing, one that sends its request
    head a byte every 0.3 s (the head would take ~12 s), and one that does the same after a
    keep-alive response, all end before their head is complete."""
    model, items = fitted
    served = ServingModel(model, items, INFO, max_k=20, precompute_max_users=0)
    head = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
    with serving(tmp_path, served, head_timeout_seconds=1.0) as port:
        silent = connect(port)
        assert read_to_eof(silent) == b""  # closed, nothing said

        def trickle(sock: socket.socket) -> tuple[int, bytes]:
            sock.settimeout(0.3)
            for sent in range(len(head)):
                try:
                    return sent, read_to_eof(sock)  # the server said something, or closed
                except TimeoutError:
                    sock.sendall(head[sent : sent + 1])
            sock.settimeout(NEVER)
            return len(head), read_to_eof(sock)

        with connect(port) as fresh:
            sent, said = trickle(fresh)
        assert sent < len(head), f"a head trickled over ~12 s was answered: {said!r}"
        assert said == b"" or said.startswith(b"HTTP/1.1 408"), said

        with connect(port) as kept:
            kept.sendall(head)
            status, headers, _ = answer(kept)
            assert status == 200 and headers.get("connection") != "close"
            sent, said = trickle(kept)
        assert sent < len(head), f"a second head trickled over ~12 s was answered: {said!r}"


def test_an_oversized_head_is_cut_off(tmp_path: Path, fitted) -> None:
    """A header line of 32 MB (no key needed): the server stops reading after max_head_bytes
    (16 KiB) and one read, answers 431 and closes; it never holds the whole head."""
    model, items = fitted
    served = ServingModel(model, items, INFO, max_k=20, precompute_max_users=0)
    piece, pieces = b"a" * 65_536, 512
    with serving(tmp_path, served) as port, connect(port) as sock:
        sent = 0
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: ")
            while sent < pieces:
                sock.sendall(piece)
                sent += 1
            sock.sendall(b"\r\n\r\n")
            said = read_to_eof(sock)
        except (BrokenPipeError, ConnectionResetError):
            said = b""  # closed with our bytes unread: the kernel resets the connection
    assert sent < pieces, f"a 32 MB head was read whole: {said[:200]!r}"
    assert said == b"" or said.startswith(b"HTTP/1.1 431"), said[:200]


# ------------------------------------------------------------------------------ item 8: 300 idle
@pytest.mark.parametrize("addresses", [1, IDLE], ids=["one client", "300 clients"])
def test_health_answers_within_1_s_while_300_idle_connections_are_open(
    tmp_path: Path, fitted, addresses: int
) -> None:
    """300 connections that send nothing, from 127.0.0.1 or each from its own address of
    127.0.0.0/8, with the default limits: /health answers 200 within the issue's 1 s (it takes
    a few ms: the bound leaves a wide margin). From 300 addresses every idle connection is still
    open when /health has answered; from one address, the server evicted that client's idle
    connections beyond max_connections_per_client."""
    model, items = fitted
    served = ServingModel(model, items, INFO, max_k=20, precompute_max_users=0)
    sources = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(addresses)]
    with serving(tmp_path, served) as port, ExitStack() as stack:
        idle = [stack.enter_context(connect(port, sources[i % addresses])) for i in range(IDLE)]
        # one request on a connection opened after them, so the server has accepted them all
        started = time.perf_counter()
        status, _, body = request(port, "GET", "/health", source=sources[-1])
        took = time.perf_counter() - started
        still_open = sum(not closed_by_server(s) for s in idle)
    assert status == 200 and orjson.loads(body)["status"] == "ready", body
    assert took < HEALTH_BOUND, f"/health took {took:.3f} s with {IDLE} idle connections open"
    per_client = ServeSettings().max_connections_per_client
    if addresses == IDLE:
        assert still_open == IDLE
    else:
        assert still_open < per_client  # the oldest were evicted to let new ones in


# ------------------------------------------------------------------------------ item 9: batch
class HeldModel(ServingModel):
    """The real ServingModel, whose first scoring call waits until the test lets it go (or
    NEVER / 3 s pass): it shows whether anything else is answered while a batch is scored."""

    scoring: threading.Event
    release: threading.Event
    released_in_time: bool | None = None

    def recommend(self, user_id, k, exclude_known=True, explain=False):
        if not self.scoring.is_set():
            self.scoring.set()
            self.released_in_time = self.release.wait(NEVER / 3)
        return super().recommend(user_id, k, exclude_known, explain)


def post_batch(port: int, body: bytes, results: dict) -> None:
    """POST /recommendations/batch (in a thread); its answer goes to results["batch"]."""
    results["batch"] = request(port, "POST", "/recommendations/batch", body)


def test_health_answers_while_a_batch_is_being_scored(tmp_path: Path, fitted) -> None:
    model, items = fitted
    served = HeldModel(model, items, INFO, max_k=20, precompute_max_users=0)
    served.scoring, served.release = threading.Event(), threading.Event()
    users = model.users.decode(model.user_ids[:500]).tolist()
    results: dict[str, tuple[int, dict, bytes]] = {}
    with serving(tmp_path, served) as port:
        body = orjson.dumps({"user_ids": users, "k": 5})
        batch = threading.Thread(target=post_batch, args=(port, body, results))
        batch.start()
        assert served.scoring.wait(NEVER), "the batch never started scoring"
        results["health"] = request(port, "GET", "/health")  # while the batch is held
        served.release.set()
        batch.join(timeout=NEVER * 2)
    assert results["health"][0] == 200
    assert served.released_in_time, "/health was not answered until the batch's scoring ended"
    status, _, payload = results["batch"]
    assert status == 200
    lists = orjson.loads(payload)["results"]
    assert [r["user_id"] for r in lists] == users
    for r in lists[:20]:
        assert [(i["item_id"], i["score"]) for i in r["items"]] == model.recommend_items(
            r["user_id"], 5
        )


def test_beyond_limit_concurrency_only_health_still_answers(tmp_path: Path, fitted) -> None:
    """limit_concurrency = 1 and one batch in flight (held while being scored): another data
    request gets 503 with Retry-After, /health still answers 200; once the batch is done the
    same request answers 200 again."""
    model, items = fitted
    served = HeldModel(model, items, INFO, max_k=20, precompute_max_users=0)
    served.scoring, served.release = threading.Event(), threading.Event()
    users = model.users.decode(model.user_ids[:3]).tolist()
    results: dict[str, tuple[int, dict, bytes]] = {}
    with serving(tmp_path, served, limit_concurrency=1) as port:
        body = orjson.dumps({"user_ids": users, "k": 5})
        batch = threading.Thread(target=post_batch, args=(port, body, results))
        batch.start()
        assert served.scoring.wait(NEVER), "the batch never started scoring"
        results["model"] = request(port, "GET", "/model")
        results["health"] = request(port, "GET", "/health")
        served.release.set()
        batch.join(timeout=NEVER * 2)
        after = request(port, "GET", "/model")
    status, headers, payload = results["model"]
    assert status == 503 and headers.get("retry-after") == "1", payload
    assert "more than 1 requests in flight" in orjson.loads(payload)["detail"]
    assert results["health"][0] == 200 and results["batch"][0] == 200
    assert after[0] == 200 and orjson.loads(after[2])["version"] == "1"


# ------------------------------------------------------------------------------ the model file
@pytest.fixture
def home_with_model(tmp_path: Path, fitted) -> tuple[Path, Path, str]:
    """A home whose local champion copy (<paths.models>/champion) holds the fitted model."""
    config_file = small_config(tmp_path)
    cfg = config_for(tmp_path, config_file)
    model, _ = fitted
    package.install(package.save(model, cfg.paths.models, {"run_id": None}), cfg.paths.models)
    return tmp_path, config_file, str(model.users.decode(model.user_ids[:1])[0])


@pytest.mark.parametrize(
    "name", [package.MODEL_FILE, package.IDS_FILE, package.USER_ITEMS_FILE, package.REPEATS_FILE]
)
@pytest.mark.parametrize("damage", ["empty", "half", "last bytes cut", "middle zeroed"])
def test_a_truncated_package_file_is_named(home_with_model, name: str, damage: str) -> None:
    home, config_file, _ = home_with_model
    directory = package.local_dir(config_for(home, config_file).paths.models)
    path = directory / name
    data = path.read_bytes()
    n = len(data)
    path.write_bytes({
        "empty": b"", "half": data[: n // 2], "last bytes cut": data[: n - 8],
        "middle zeroed": data[: n // 3] + bytes(n // 3) + data[2 * (n // 3):],
    }[damage])  # fmt: skip
    with pytest.raises(ValueError) as caught:
        package.load_recommender(directory)
    assert str(path) in str(caught.value) and "retrain" in str(caught.value)


@pytest.mark.e2e  # the command line in a child process, as a user runs it
def test_recommend_on_a_truncated_model_file_names_it(home_with_model) -> None:
    home, config_file, user = home_with_model
    path = package.local_dir(config_for(home, config_file).paths.models) / package.MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(config_file)}
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", "recommend", user],
        env=with_code_under_test(env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in proc.stderr and "truncated or damaged" in proc.stderr, proc.stderr

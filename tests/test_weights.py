"""Weights: spec resolution, safe loading, mismatches, offline behaviour and downloads."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import pickle
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cvtasks import weights as W
from cvtasks.errors import UsageError, WeightsError, WeightsUnavailableError


def test_resolve_specs(tmp_path):
    assert W.resolve_weights("resnet50", "DEFAULT").member.name == "IMAGENET1K_V2"
    assert W.resolve_weights("resnet50", "default").kind == "pretrained"
    assert W.resolve_weights("resnet50", "IMAGENET1K_V1").member.name == "IMAGENET1K_V1"
    assert (
        W.resolve_weights("resnet50", "ResNet50_Weights.IMAGENET1K_V1").member.name
        == "IMAGENET1K_V1"
    )
    none = W.resolve_weights("resnet50", "none")
    assert none.kind == "none" and none.member.name == "IMAGENET1K_V2"
    file = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(1)}, file)
    assert W.resolve_weights("resnet50", str(file)).kind == "file"
    with pytest.raises(UsageError, match="did you mean 'IMAGENET1K_V1'"):
        W.resolve_weights("resnet50", "IMAGENET1K_V1X")
    with pytest.raises(UsageError, match="weights file not found"):
        W.resolve_weights("resnet50", "missing/w.pth")


def test_cache_path_follows_torch_home():
    member = W.resolve_weights("resnet18", "DEFAULT").member
    assert (
        W.cache_path(member)
        == Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    )


def test_load_formats(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    torch.save(state, tmp_path / "plain.pth")
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3},
        tmp_path / "ckpt.pt",
    )
    save_file(state, str(tmp_path / "s.safetensors"))
    for name in ("plain.pth", "ckpt.pt", "s.safetensors"):
        loaded = W.load_state_dict(tmp_path / name)
        assert set(loaded) == {"w", "b"} and torch.equal(loaded["w"], state["w"])


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("force_env", [False, True])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, monkeypatch, force_env):
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload(str(marker))}, evil)
    with pytest.raises(WeightsError, match="contains Python objects"):
        W.load_state_dict(evil)
    assert not marker.exists()


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        W.load_state_dict(bad)


def test_mismatch_names_keys_and_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(WeightsError) as err:
        W.load_into(model, {"0.weight": torch.zeros(5, 3), "extra": torch.zeros(1)}, "f.pth")
    text = str(err.value)
    assert "0.weight: file (5, 3) vs model (2, 3)" in text
    assert "missing keys, e.g. 0.bias" in text and "unexpected keys, e.g. extra" in text


def test_offline_uncached_is_weights_unavailable():
    resolved = W.resolve_weights("resnet18", "DEFAULT")
    with pytest.raises(WeightsUnavailableError) as err:
        W.fetch(resolved)
    text = str(err.value)
    assert "cvtasks models pull resnet18" in text
    assert str(W.cache_path(resolved.member)) in text and "--weights" in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_with_exit_3(monkeypatch):
    monkeypatch.delenv("CVTASKS_OFFLINE")
    port = _closed_port()
    real = W.download
    monkeypatch.setattr(
        W, "download", lambda url, dest: real(f"http://127.0.0.1:{port}/x.pth", dest)
    )
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="download failed"):
        W.fetch(W.resolve_weights("resnet18", "DEFAULT"))
    assert time.perf_counter() - start < 10
    assert not W.cache_path(W.resolve_weights("resnet18", "DEFAULT").member).exists()


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_hash_and_is_atomic(file_server, tmp_path):
    root, base = file_server
    payload = pickle.dumps(list(range(1000)))
    digest = hashlib.sha256(payload).hexdigest()[:8]
    (root / f"good-{digest}.pth").write_bytes(payload)
    (root / "bad-deadbeef.pth").write_bytes(payload)
    dest_dir = tmp_path / "cache"
    W.download(f"{base}/good-{digest}.pth", dest_dir / f"good-{digest}.pth")
    assert (dest_dir / f"good-{digest}.pth").read_bytes() == payload
    with pytest.raises(WeightsError, match="does not match its hash"):
        W.download(f"{base}/bad-deadbeef.pth", dest_dir / "bad-deadbeef.pth")
    # the verified download, its hash stamp, and nothing of the refused one
    assert sorted(p.name for p in dest_dir.iterdir()) == [
        f"good-{digest}.pth",
        f"good-{digest}.pth.verified",
    ]


def test_corrupt_cached_file_says_how_to_fix():
    resolved = W.resolve_weights("resnet18", "IMAGENET1K_V1")
    path = W.cache_path(resolved.member)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 100)
    try:
        with pytest.raises(WeightsError) as err:
            W.load_weights(resolved)
        assert "do not match the hash in their name (f37072fd" in str(err.value)
        assert str(path) in str(err.value) and "cvtasks models pull resnet18" in str(err.value)
    finally:
        path.unlink()


def test_cached_hash_check_and_stamp(tmp_path):
    payload = b"weights" * 1000
    good = tmp_path / f"net-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    good.write_bytes(payload)
    W.verify_cached(good, "net")
    stamp = good.with_name(good.name + ".verified")
    assert stamp.is_file()
    W.verify_cached(good, "net")  # the stamp answers; no rehash needed
    before = good.stat().st_mtime_ns
    good.write_bytes(payload[:-1] + b"X")  # tampered after verification: same size
    os.utime(good, ns=(before + 10**9, before + 10**9))  # a later mtime, whatever the clock tick
    with pytest.raises(WeightsError, match="do not match the hash"):
        W.verify_cached(good, "net")

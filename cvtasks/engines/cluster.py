"""Checks of an ``--engine ray`` run that need neither ray nor torch: they run before any
model loads, so a wrong address fails within seconds."""

from __future__ import annotations

import os
import socket
import time

from cvtasks.config import InferenceConfig
from cvtasks.errors import ClusterError, UsageError
from cvtasks.io.sources import InputItem

CONNECT_TIMEOUT_S = 5.0


def cluster_address(cfg: InferenceConfig) -> str | None:
    """``--ray-address``, else ``$RAY_ADDRESS``, else None (a local instance)."""
    return cfg.ray_address or os.environ.get("RAY_ADDRESS") or None


def check_run(cfg: InferenceConfig, items: list[InputItem]) -> None:
    """What can be refused before any model loads: live inputs, an unreachable cluster."""
    check_items(items)
    address = cluster_address(cfg)
    if address and address != "auto":
        check_reachable(address)


def check_items(items: list[InputItem]) -> None:
    """Inputs the Ray engine cannot take."""
    live = [item.source for item in items if item.kind == "live"]
    if live:
        raise UsageError(
            f"--engine ray reads files; live sources ({live[0]}) run with --engine local"
        )


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within seconds, naming the address, when nothing listens there."""
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"--ray-address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), auto, or "
            "ray://HOST:10001"
        )
    start = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        waited = time.monotonic() - start
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}, after "
            f"{waited:.1f} s): start it with `ray start --head`, check the address, or leave "
            "--ray-address and $RAY_ADDRESS unset for a local Ray instance"
        ) from None

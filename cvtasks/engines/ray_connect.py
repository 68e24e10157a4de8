"""Joining a Ray cluster (token authentication included) or starting a local instance, with
Ray's own console logging turned down so that failures reach stderr once, as our errors."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from cvtasks.config import InferenceConfig
from cvtasks.engines.cluster import check_reachable, cluster_address
from cvtasks.errors import ClusterError


def connect(cfg: InferenceConfig) -> bool:
    """Join the cluster at ``--ray-address`` (or ``$RAY_ADDRESS``), or start a local instance;
    True when this call started Ray (and the run must stop it)."""
    address = cluster_address(cfg)
    token = use_auth_token() if address else None  # before Ray reads its configuration
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        check_reachable(address)
    quiet_ray_logs()
    options: dict[str, Any] = {
        "logging_level": logging.ERROR,
        "include_dashboard": False,
        "configure_logging": True,
        "log_to_driver": False,  # the actors' messages come back with their results
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            ray.init(address="local", num_cpus=cores, **options)
    except Exception as exc:  # ConnectionError, Ray's AuthenticationError, RuntimeError
        if not address:
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = (
            f"; the token used ({token}) may not be this cluster's: set RAY_AUTH_TOKEN to the "
            "head's (`ray get-auth-token` there prints it)"
            if token
            else "; if it uses token authentication (Ray 2.60's `ray start --head` does when "
            "~/.ray/auth_token exists), set RAY_AUTH_TOKEN to the head's token (`ray "
            "get-auth-token` there prints it) or copy it to ~/.ray/auth_token"
        )
        raise ClusterError(f"cannot join the Ray cluster at {address}: {text}{hint}") from None
    return True


def use_auth_token() -> str | None:
    """Join clusters that use token authentication: when ``RAY_AUTH_MODE`` is unset and a token
    is at hand (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``,
    the order Ray reads them in), turn token mode on for this driver. Returns where the token
    came from, or None. ``ray start --head`` enables authentication itself when that default
    file exists, and a driver without ``RAY_AUTH_MODE=token`` is then refused."""
    if os.environ.get("RAY_AUTH_MODE"):
        return None
    source = None
    if os.environ.get("RAY_AUTH_TOKEN"):
        source = "$RAY_AUTH_TOKEN"
    elif (
        os.environ.get("RAY_AUTH_TOKEN_PATH") and Path(os.environ["RAY_AUTH_TOKEN_PATH"]).is_file()
    ):
        source = os.environ["RAY_AUTH_TOKEN_PATH"]
    elif (Path.home() / ".ray" / "auth_token").is_file():
        source = str(Path.home() / ".ray" / "auth_token")
    if source is not None:
        os.environ["RAY_AUTH_MODE"] = "token"
        _refresh_ray_config()
    return source


def _refresh_ray_config() -> None:
    """Ray caches its configuration (the auth mode among it) when first imported; a process
    that imported Ray before the mode was set must refresh it, as Ray itself does when it turns
    token mode on for a new local cluster."""
    if "ray" not in sys.modules:
        return  # read fresh on import
    try:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
    except (ImportError, AttributeError):  # a Ray without this hook reads the mode at init
        pass


def quiet_ray_logs() -> None:
    """Ray's console logging off: failures reach stderr once, as our own one-line errors
    (Ray Data's full log stays in the session folder, ray-data.log)."""
    import ray.data  # configures the ray.data loggers on import

    for name in ("ray", "ray.data"):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.CRITICAL)
    logging.getLogger("ray").setLevel(logging.ERROR)
    del ray

"""MTCNN's three weight files: downloaded on first use into the torch hub cache (like
torchvision's), checked by SHA-256, or read from a folder given with ``-w DIR``."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch

from cvtasks.downloads import download
from cvtasks.errors import UsageError, WeightsError, WeightsUnavailableError
from cvtasks.faces.mtcnn import ONet, PNet, RNet
from cvtasks.log import info
from cvtasks.weights import OFFLINE_ENV, env_flag, load_state_dict

# facenet-pytorch's files (MIT licence), the ones its PyPI wheel 2.6.0 also carries
SOURCE = "https://github.com/timesler/facenet-pytorch/raw/master/data/{name}.pt"
SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def cache_folder() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / "mtcnn"


def cached_file(name: str) -> Path:
    """The cache name carries the hash prefix, which the download checks."""
    return cache_folder() / f"{name}-{SHA256[name][:8]}.pt"


def _unavailable(reason: str) -> WeightsUnavailableError:
    urls = "\n".join(f"    {SOURCE.format(name=n)} -> {cached_file(n)}" for n in NETS)
    return WeightsUnavailableError(
        f"MTCNN weights are not cached and cannot be downloaded ({reason}).\n"
        "Fix it in one of these ways:\n"
        "  - on a machine with internet access run: cvtasks models pull mtcnn\n"
        f"  - or place the three files:\n{urls}\n"
        "  - or pass a folder holding pnet.pt, rnet.pt and onet.pt: -w DIR (or --face-weights)"
    )


def fetch_mtcnn() -> dict[str, Path]:
    """The three cached files, downloading the missing ones unless offline."""
    found = {name: cached_file(name) for name in NETS}
    missing = [n for n, p in found.items() if not p.is_file()]
    if missing and env_flag(OFFLINE_ENV):
        raise _unavailable(f"{OFFLINE_ENV} is set")
    for name in missing:
        info(f"downloading {SOURCE.format(name=name)} -> {found[name]}")
        try:
            download(SOURCE.format(name=name), found[name])
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise _unavailable(f"download failed: {getattr(exc, 'reason', None) or exc}") from None
    return found


def mtcnn_files(spec: str) -> dict[str, Path]:
    """``DEFAULT`` (the cache) or a folder with ``pnet.pt``, ``rnet.pt``, ``onet.pt``."""
    if spec.strip().upper() == "DEFAULT":
        return fetch_mtcnn()
    folder = Path(spec).expanduser()
    if not folder.exists():
        raise UsageError(f"weights folder not found: {folder}")
    if not folder.is_dir():
        raise UsageError(
            f"MTCNN weights are three files: pass the folder holding pnet.pt, rnet.pt and "
            f"onet.pt, not {folder}"
        )
    files = {name: folder / f"{name}.pt" for name in NETS}
    missing = [str(p.name) for p in files.values() if not p.is_file()]
    if missing:
        raise UsageError(f"weights file not found: {', '.join(missing)} in {folder}")
    return files


def load_mtcnn(spec: str, device: torch.device) -> tuple[PNet, RNet, ONet]:
    """The three nets with their weights, in eval mode on ``device``."""
    nets = []
    for name, path in mtcnn_files(spec).items():
        net = NETS[name]()
        try:
            net.load_state_dict(load_state_dict(path))
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
            raise WeightsError(f"{path} is not an MTCNN {name} state dict: {first}") from None
        nets.append(net.eval().to(device))
    pnet, rnet, onet = nets
    assert isinstance(pnet, PNet) and isinstance(rnet, RNet) and isinstance(onet, ONet)
    return pnet, rnet, onet

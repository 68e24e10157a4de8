"""JPEG decoding on the model's device: a batch of files' bytes becomes upright RGB uint8
``C x H x W`` tensors there (nvJPEG on CUDA, libjpeg on a CPU), for preprocessing on tensors.

TorchCodec's ``decode_jpeg`` decodes where it can (torchvision's own is deprecated from 0.29 and
serves only as the fallback). A batch that fails is decoded again one image at a time, so that
only the bad files fail; the caller sends those to the Pillow path.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence

import torch
from PIL import Image

from cvtasks.io.decode import JpegFile

Decoder = Callable[[list[torch.Tensor], torch.device], list[torch.Tensor]]
_decoder: Decoder | None = None
_turns: dict[tuple[Decoder, str], bool] = {}


def _torchcodec(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchcodec.decoders import decode_jpeg

    decoded = decode_jpeg(datas, mode="RGB", device=device)
    assert isinstance(decoded, list)
    return decoded


def _torchvision(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice: torchcodec is preferred
        decoded = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
    assert isinstance(decoded, list)
    return decoded


def jpeg_decoder() -> Decoder:
    """TorchCodec's decoder when it loads here, else torchvision's."""
    global _decoder
    if _decoder is None:
        try:
            from torchcodec.decoders import decode_jpeg  # noqa: F401  # loads its libraries

            _decoder = _torchcodec
        except Exception:  # not installed, or built for another torch
            _decoder = _torchvision
    return _decoder


def turns_by_itself(decode: Decoder, device: torch.device) -> bool:
    """Whether ``decode`` applies EXIF orientation on ``device`` (TorchCodec does on a CPU;
    nvJPEG batches may not): decode a 16x8 probe stored with orientation 6 and look."""
    key = (decode, str(device))
    if key not in _turns:
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.new("RGB", (16, 8)).save(buffer, format="JPEG", exif=exif)
        probe = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
        _turns[key] = tuple(decode([probe], device)[0].shape[-2:]) == (16, 8)
    return _turns[key]


def decode_jpegs(files: Sequence[JpegFile], device: torch.device) -> list[torch.Tensor | None]:
    """Upright RGB uint8 tensors on ``device``, one per file; None where a file failed."""
    datas = [torch.frombuffer(bytearray(f.data), dtype=torch.uint8) for f in files]
    decode = jpeg_decoder()
    decoded: list[torch.Tensor | None]
    try:
        decoded = list(decode(datas, device))
    except Exception:  # one bad file fails the whole batch: find it
        decoded = []
        for data in datas:
            try:
                decoded.append(decode([data], device)[0])
            except Exception:
                decoded.append(None)
    if turns_by_itself(decode, device):
        return decoded
    return [
        orient(t, f.orientation) if t is not None else None
        for t, f in zip(decoded, files, strict=True)
    ]


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1-8) to a ``C x H x W`` tensor, as Pillow's exif_transpose."""
    if orientation == 2:
        image = image.flip(2)
    elif orientation == 3:
        image = image.flip(1).flip(2)
    elif orientation == 4:
        image = image.flip(1)
    elif orientation == 5:
        image = image.transpose(1, 2)
    elif orientation == 6:
        image = image.rot90(-1, dims=(1, 2))
    elif orientation == 7:
        image = image.transpose(1, 2).flip(1).flip(2)
    elif orientation == 8:
        image = image.rot90(1, dims=(1, 2))
    return image.contiguous()

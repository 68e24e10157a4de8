"""`cvtasks gaze`: faces (from pose keypoints or a faces file), then L2CS-Net on each crop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from cvtasks.detect.predictor import run_grouped
from cvtasks.errors import UsageError, WeightsUnavailableError
from cvtasks.gaze.config import L2CS_CHECKPOINTS, GazeConfig
from cvtasks.gaze.faces import Face, face_from_keypoints, read_faces
from cvtasks.gaze.model import build_l2cs, decode, face_tensor, gaze_vector
from cvtasks.log import warn
from cvtasks.render.draw import arrow_head_points, draw_boxes, line_width_for
from cvtasks.render.palette import instance_colour
from cvtasks.tasks.base import Predictor
from cvtasks.types import Frame, Result
from cvtasks.weights import is_file_spec, load_state_dict

GAZE_COLOUR = (255, 220, 0)  # yellow: apart from the palette's first (red) box


@dataclass
class GazeFace:
    """One face: its box and score, and where it looks (degrees; unit vector)."""

    face: Face
    yaw: float
    pitch: float
    track_id: int | None = None

    @property
    def box(self) -> list[float]:
        return self.face.box

    @property
    def score(self) -> float:
        return self.face.score

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "box": self.face.box,
            "score": self.face.score,
            "yaw": round(self.yaw, 3),
            "pitch": round(self.pitch, 3),
            "vector": [round(v, 6) for v in gaze_vector(self.yaw, self.pitch)],
        }
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record


@dataclass
class GazeResult:
    """The faces of one image, highest score first."""

    faces: list[GazeFace] = field(default_factory=list)

    @property
    def predictions(self) -> list[GazeFace]:
        return self.faces

    def to_record(self) -> dict[str, Any]:
        return {"predictions": [f.to_record() for f in self.faces]}

    def summary(self) -> str:
        shown = ", ".join(f"yaw {f.yaw:.0f} pitch {f.pitch:.0f}" for f in self.faces[:3])
        return shown or "no faces"

    def annotate(self, image: np.ndarray) -> np.ndarray:
        colours = [instance_colour(f.track_id or i) for i, f in enumerate(self.faces)]
        tags = [
            (f"#{f.track_id} " if f.track_id is not None else "")
            + f"yaw {f.yaw:.0f} pitch {f.pitch:.0f}"
            for f in self.faces
        ]
        canvas = Image.fromarray(draw_boxes(image, [f.box for f in self.faces], tags, colours))
        draw = ImageDraw.Draw(canvas)
        width = line_width_for(canvas.width, canvas.height) + 1
        for face in self.faces:
            x1, _, x2, _ = face.box
            length = 1.5 * (x2 - x1)
            vx, vy, _ = gaze_vector(face.yaw, face.pitch)
            (sx, sy) = face.face.eyes
            end = (sx + length * vx, sy + length * vy)
            draw.line((sx, sy, *end), fill=(0, 0, 0), width=width + 2)
            draw.line((sx, sy, *end), fill=GAZE_COLOUR, width=width)
            head = arrow_head_points((sx, sy), end, 4.0 * width + 4)
            if head is not None and length * (vx * vx + vy * vy) ** 0.5 > 3 * width:
                draw.polygon(head, fill=GAZE_COLOUR, outline=(0, 0, 0))
            else:  # looking (almost) straight at the camera: a dot at the eyes
                draw.ellipse((sx - width, sy - width, sx + width, sy + width), fill=GAZE_COLOUR)
        return np.asarray(canvas)


def _size_only(image: Image.Image) -> torch.Tensor:
    return torch.empty(0)


class GazePredictor(Predictor):
    """Face boxes, then the gaze of each face crop."""

    task = "gaze"
    needs_images = True  # the crops come from the decoded image

    def __init__(self, cfg: GazeConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        spec = cfg.weights.strip()
        if spec.upper() == "DEFAULT" or not is_file_spec(spec):
            raise WeightsUnavailableError(
                "cvtasks gaze needs an L2CS-Net checkpoint: pass -w L2CSNet_gaze360.pkl (90 bins, "
                "Gaze360) or an MPIIGaze fold (28 bins). They are published at "
                f"{L2CS_CHECKPOINTS} and not on a package registry, so cvtasks does not "
                "download them."
            )
        from pathlib import Path

        path = Path(spec).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file not found: {path}")
        self.net, self.bins = build_l2cs(load_state_dict(path), str(path))
        self.net.to(device)
        self.faces_file = read_faces(cfg.faces) if cfg.faces else None
        self.unlisted: set[str] = set()  # inputs the faces file has no entry for (warned)
        self.detector: Any = None
        self.mtcnn: Any = None
        self.transforms: Any = _size_only
        if self.faces_file is None and cfg.face_detector == "mtcnn":
            from cvtasks.faces.weights import load_mtcnn

            self.mtcnn = load_mtcnn(cfg.face_weights, device)
        elif self.faces_file is None:
            self._load_keypoint_model(cfg)

    def _load_keypoint_model(self, cfg: GazeConfig) -> None:
        from cvtasks.detect.predictor import build_detector
        from cvtasks.pose.predictor import pose_models
        from cvtasks.weights import check_model_name, resolve_weights

        check_model_name(cfg.pose_model, pose_models(), "pose")
        resolved = resolve_weights(cfg.pose_model, cfg.pose_weights)
        self.keypoint_names = list(resolved.member.meta["keypoint_names"])
        self.detector = build_detector(cfg.pose_model, resolved, 2).to(self.device)
        self.detector.roi_heads.score_thresh = cfg.conf
        self.transforms = resolved.transforms()

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.transforms

    def collate(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def to_device(self, batch: Any) -> Any:
        return [b.to(self.device) for b in batch] if self.detector is not None else batch

    def infer(self, batch: Any) -> Any:
        if self.detector is None:
            return [None] * len(batch)
        return run_grouped(lambda group: self.detector(group), batch)

    def _faces(self, output: Any, frame: Frame) -> list[Face]:
        assert isinstance(self.cfg, GazeConfig)
        if self.faces_file is not None:
            found = self.faces_file.get((frame.source, frame.index))
            if found is None:
                from pathlib import Path

                found = self.faces_file.get((Path(frame.source).name, frame.index))
            if found is None:
                found = []
                if frame.source not in self.unlisted:  # once per input, not per frame
                    self.unlisted.add(frame.source)
                    where = "" if frame.index is None else f" (frame {frame.index}, maybe more)"
                    warn(
                        f"--faces {self.cfg.faces} has no entry for {frame.source}{where}: "
                        "no faces there"
                    )
            return [f for f in found if f.score >= self.cfg.conf]
        if self.mtcnn is not None:
            return self._mtcnn_faces(frame)
        faces = []
        for points, scores, score in zip(
            output["keypoints"].tolist(), output["keypoints_scores"].tolist(),
            output["scores"].tolist(), strict=True,
        ):  # fmt: skip
            named = {
                n: [p[0], p[1], s]
                for n, p, s in zip(self.keypoint_names, points, scores, strict=True)
            }
            face = face_from_keypoints(named, score) if score >= self.cfg.conf else None
            if face is not None:
                faces.append(face)
        return faces

    def _mtcnn_faces(self, frame: Frame) -> list[Face]:
        """MTCNN's faces; the gaze is drawn from between the two eye landmarks."""
        from cvtasks.faces.mtcnn import detect, round2

        assert isinstance(self.cfg, GazeConfig) and frame.image is not None
        found = detect(torch.from_numpy(np.array(frame.image, copy=True)), self.mtcnn)
        faces = []
        for box, score, marks in found.rows():
            if score >= self.cfg.conf:
                eyes = ((marks[0][0] + marks[1][0]) / 2, (marks[0][1] + marks[1][1]) / 2)
                faces.append(Face(round2(box), round(score, 4), eyes))
        return faces

    def postprocess(self, outputs: Any, frames: Sequence[Frame]) -> list[Result]:
        assert isinstance(self.cfg, GazeConfig)
        results: list[Result] = []
        for output, frame in zip(outputs, frames, strict=True):
            assert frame.image is not None
            faces = []
            for face in self._faces(output, frame):
                try:
                    faces.append((face, face_tensor(frame.image, face.box, self.cfg.input_size)))
                except ValueError:
                    continue  # a box outside the image
            if not faces:
                results.append(GazeResult([]))
                continue
            crops = torch.stack([t for _, t in faces]).to(self.device)
            yaw_logits, pitch_logits = self.net(crops)
            yaws, pitches = (
                decode(yaw_logits, self.bins).tolist(),
                decode(pitch_logits, self.bins).tolist(),
            )
            gazed = [GazeFace(f, y, p) for (f, _), y, p in zip(faces, yaws, pitches, strict=True)]
            gazed.sort(key=lambda g: g.score, reverse=True)
            results.append(GazeResult(gazed))
        return results

"""`cvtasks gaze VIDEO --track`: the face tracker stage `cvtasks faces` uses."""

from __future__ import annotations

from cvtasks.faces.track import FaceTrackStage, make_face_track_stage

__all__ = ["FaceTrackStage", "make_face_track_stage"]

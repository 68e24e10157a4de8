"""Options of `cvtasks track` (no torch here: the CLI is built from this)."""

from __future__ import annotations

from dataclasses import dataclass

from cvtasks.config import MODEL_HELP, option
from cvtasks.pose.config import PoseConfig
from cvtasks.segment.config import SegmentConfig

TRACKERS = ("bytetrack", "ocsort", "botsort", "sort")
ANCHORS = ("bottom-center", "center", "top-center")


@dataclass
class TrackConfig(PoseConfig, SegmentConfig):
    """Every option of detect (and of pose and instance segment, whose keypoints and masks
    travel with their tracks), plus the tracker, lines, zones, speed and evaluation."""

    model: str = option(
        "fasterrcnn_resnet50_fpn_v2",
        MODEL_HELP + " Any detect, pose (keypointrcnn_*) or instance segment (maskrcnn_*) model.",
        flag="-m",
        panel="Model",
    )
    format: str | None = option(
        None,
        "What goes to stdout: table, jsonl, json, csv, coco, or mot (MOTChallenge lines "
        "frame,id,x,y,w,h,conf,-1,-1,-1) (default: table on a terminal, else jsonl).",
        flag="-f",
        choices=("table", "jsonl", "json", "csv", "coco", "mot"),
        affects_results=False,
        panel="Output",
    )
    batch_size: int = option(
        1,
        "Frames per forward pass (1 keeps a live stream's latency lowest).",
        flag="-b",
        minimum=1,
        maximum=4096,
        affects_results=False,
    )
    conf: float = option(
        0.1,
        "Minimum detection score handed to the tracker (ByteTrack's second association uses "
        "boxes between this and --high-conf).",
        minimum=0.0,
        maximum=1.0,
        panel="Task",
    )
    detections: str | None = option(
        None,
        "Track these detections instead of running a model: a MOTChallenge det.txt "
        "(frame,-1,x,y,w,h,conf,..., frames 1-based) or cvtasks detect/pose JSONL; one file "
        "for one video or sequence.",
        panel="Track",
    )
    tracker: str = option(
        "bytetrack",
        "Tracker from the `trackers` package.",
        choices=TRACKERS,
        panel="Track",
    )
    track_buffer: float = option(
        1.0,
        "Seconds a lost track is kept for re-association (scaled to frames by the source's "
        "frame rate / --vid-stride).",
        minimum=0.0,
        maximum=3600.0,
        panel="Track",
    )
    track_activation: float | None = option(
        None,
        "Minimum score for a detection to start a track (default: the tracker's own, 0.7 "
        "for ByteTrack and BoT-SORT, 0.25 for SORT; OC-SORT starts from --high-conf). ByteTrack "
        "and BoT-SORT start tracks only above both this and --high-conf: lower both.",
        minimum=0.0,
        maximum=1.0,
        panel="Track",
    )
    high_conf: float | None = option(
        None,
        "Score splitting high from low detections in the two-stage association (ByteTrack, "
        "OC-SORT, BoT-SORT; default 0.6). New tracks start only from high detections, so a "
        "track starts at the larger of this and --track-activation.",
        minimum=0.0,
        maximum=1.0,
        panel="Track",
    )
    match_iou: float | None = option(
        None,
        "Minimum IoU to match a detection to a track (default: the tracker's own: ByteTrack "
        "0.1, SORT and OC-SORT 0.3, BoT-SORT 0.2 in its first association).",
        minimum=0.0,
        maximum=1.0,
        panel="Track",
    )
    min_hits: int | None = option(
        None,
        "Consecutive matched frames before a track gets an id (default: the tracker's own: "
        "2 for ByteTrack and BoT-SORT, 3 for SORT and OC-SORT).",
        minimum=1,
        maximum=1000,
        panel="Track",
    )
    cmc: bool = option(
        True,
        "BoT-SORT: camera-motion compensation (sparse optical flow between frames).",
        negatable=True,
        panel="Track",
    )
    line: list[str] = option(
        [],
        "Count crossings of a line: NAME=x1,y1,x2,y2 in pixels, or all four in [0, 1] as "
        "fractions of width/height. Crossing from the left of P1->P2 to its right is 'in' "
        "(a line drawn left to right: moving down the image).",
        panel="Analytics",
        repeatable=True,
    )
    zone: list[str] = option(
        [],
        "A polygon zone: NAME=x1,y1,x2,y2,x3,y3[,...] (pixels or fractions): occupancy per "
        "frame and class, entries, dwell seconds per track.",
        panel="Analytics",
        repeatable=True,
    )
    anchor: str = option(
        "bottom-center",
        "The point of a box that crosses lines and sits in zones.",
        choices=ANCHORS,
        panel="Analytics",
    )
    ground: str | None = option(
        None,
        "Speed: four image points and the same four on the ground in metres, "
        "x1,y1,...,x4,y4:X1,Y1,...,X4,Y4 (a homography); tracks then get speed_kmh and "
        "tracks.jsonl the distance in metres.",
        panel="Analytics",
    )
    eval_gt: str | None = option(
        None,
        "MOTChallenge ground truth (gt.txt, or a folder of <source>/gt/gt.txt or "
        "<source>.txt): HOTA, MOTA, IDF1 and ID switches into analytics.json.",
        panel="Analytics",
    )
    trail: int = option(
        30,
        "Annotated video: the last N anchor points of each track drawn as a trail.",
        minimum=0,
        maximum=10_000,
        affects_results=False,
        panel="Output",
    )
    fps: float | None = option(
        None,
        "Frame rate of image sequences (default: frameRate of a MOTChallenge seqinfo.ini "
        "beside the frames, else 30).",
        minimum=0.001,
        maximum=10_000.0,
        panel="Input",
    )
    reconnect: int = option(
        3,
        "Live sources: reconnection attempts (with backoff 0.5, 1, 2 ... s) before the source "
        "fails.",
        minimum=0,
        maximum=1000,
        affects_results=False,
        panel="Input",
    )

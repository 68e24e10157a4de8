"""`cvtasks faces` on MTCNN's real weights (facenet-pytorch's files, hash checked): the same
faces as facenet-pytorch itself, where a person sees them, crops that are what they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import jsonl
from PIL import Image
from real_weights import mtcnn_dir

from cvtasks.faces.align import TEMPLATE_112, context_box, similarity
from cvtasks.faces.mtcnn import Settings, detect
from cvtasks.faces.weights import load_mtcnn


@pytest.fixture(scope="module")
def nets():
    return load_mtcnn(str(mtcnn_dir()), torch.device("cpu"))


def skimage_rgb(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(
    "name, settings",
    [
        ("astronaut", Settings()),
        ("camera", Settings()),
        ("coffee", Settings()),
        ("astronaut", Settings(min_size=40, thresholds=(0.5, 0.6, 0.9), factor=0.6)),
    ],
)
def test_same_faces_as_facenet_pytorch(nets, name, settings):
    """The peer: facenet-pytorch's own MTCNN (same files) on the same pixels."""
    from facenet_pytorch import MTCNN

    image = skimage_rgb(name)
    reference = MTCNN(
        keep_all=True,
        min_face_size=settings.min_size,
        thresholds=list(settings.thresholds),
        factor=settings.factor,
        device="cpu",
    )
    boxes, scores, points = reference.detect(Image.fromarray(image), landmarks=True)
    ours = detect(torch.from_numpy(image.copy()), nets, settings)
    if boxes is None:
        assert len(ours.boxes) == 0
        return
    order = np.argsort(np.asarray(boxes, float)[:, 0])
    mine = np.argsort(ours.boxes[:, 0].numpy())
    assert len(order) == len(mine)
    np.testing.assert_allclose(ours.boxes.numpy()[mine], np.asarray(boxes, float)[order], atol=1e-3)
    np.testing.assert_allclose(
        ours.scores.numpy()[mine], np.asarray(scores, float)[order], atol=1e-5
    )
    np.testing.assert_allclose(
        ours.landmarks.numpy()[mine], np.asarray(points, float)[order], atol=1e-3
    )


def test_the_astronaut_has_one_face_where_a_person_sees_it(nets):
    found = detect(torch.from_numpy(skimage_rgb("astronaut").copy()), nets)
    assert len(found.boxes) == 1 and float(found.scores[0]) > 0.99
    # drawn by looking at the photo: hairline to chin, ear to ear
    assert iou(found.boxes[0].tolist(), [178, 58, 270, 175]) > 0.8
    eyes_nose_mouth = {  # by looking: pupils, nose tip, mouth corners
        "left_eye": (205, 101), "right_eye": (247, 103), "nose": (225, 128),
        "mouth_left": (203, 140), "mouth_right": (245, 142),
    }  # fmt: skip
    for (x, y), expected in zip(found.landmarks[0].tolist(), eyes_nose_mouth.values(), strict=True):
        assert abs(x - expected[0]) < 8 and abs(y - expected[1]) < 8


@pytest.mark.parametrize("name", ["chelsea", "rocket", "coffee"])
def test_no_face_in_photos_without_one(nets, name):
    assert len(detect(torch.from_numpy(skimage_rgb(name).copy()), nets).boxes) == 0


def test_pasted_faces_are_found_at_their_place_and_scale(nets):
    """The astronaut's face pasted at known places and sizes onto the coffee photo and onto
    noise: recall and box IoU measured against where it was pasted."""
    face = Image.fromarray(skimage_rgb("astronaut")).crop((168, 45, 280, 185))  # with margin
    truth_in_crop = (178 - 168, 58 - 45, 270 - 168, 175 - 45)
    rng = np.random.default_rng(0)
    backgrounds = [
        Image.fromarray(skimage_rgb("coffee")).resize((640, 480)),
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)),
    ]
    hits, ious, total = 0, [], 0
    for background in backgrounds:
        for scale, (x, y) in [
            (0.5, (40, 50)),
            (1.0, (300, 200)),
            (1.6, (420, 60)),
            (0.8, (90, 300)),
        ]:
            canvas = background.copy()
            pasted = face.resize((round(face.width * scale), round(face.height * scale)))
            canvas.paste(pasted, (x, y))
            truth = [x + v * scale for v in truth_in_crop[:1]] + [y + truth_in_crop[1] * scale]
            truth += [x + truth_in_crop[2] * scale, y + truth_in_crop[3] * scale]
            found = detect(torch.from_numpy(np.asarray(canvas).copy()), nets)
            total += 1
            best = max((iou(b, truth) for b in found.boxes.tolist()), default=0.0)
            if best > 0.5:
                hits += 1
                ious.append(best)
    assert hits == total, f"found {hits} of {total}"
    assert np.mean(ious) > 0.75, ious


def test_similarity_equals_scikit_image_and_puts_landmarks_on_the_template():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(1)
    angle, scale, shift = 0.3, 1.7, np.array([40.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = (TEMPLATE_112 - shift) @ np.linalg.inv(scale * rotation).T
    noisy = source + rng.normal(0, 0.5, source.shape)
    ours = similarity(noisy, TEMPLATE_112)
    peer = SimilarityTransform.from_estimate(noisy, TEMPLATE_112)
    np.testing.assert_allclose(ours, peer.params[:2], atol=1e-9)
    mapped = noisy @ ours[:, :2].T + ours[:, 2]
    assert np.abs(mapped - TEMPLATE_112).max() < 2.5


def test_context_box_grows_about_the_centre_and_stays_inside():
    assert context_box([100, 100, 140, 150], 640, 480, 2.7) == (66, 57, 174, 192)
    left, top, right, bottom = context_box([0, 0, 60, 60], 200, 100, 2.7)
    assert (left, top) == (0, 0) and right <= 199 and bottom <= 99  # shifted, shrunk to fit


def test_cli_records_images_and_crops(cli, photos, tmp_path):
    out = tmp_path / "out"
    result = cli(["faces", photos["astronaut"], photos["chelsea"], "-w", mtcnn_dir(), "-o", out,
                  "--save-images", "--save-crops", "-f", "jsonl", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = {Path(r["source"]).name: r for r in jsonl(result.stdout)}
    assert records["chelsea.jpg"]["predictions"] == []  # recorded, not dropped
    (face,) = records["astronaut.jpg"]["predictions"]
    assert set(face) == {"label", "score", "box", "landmarks"} and len(face["landmarks"]) == 5
    assert all(isinstance(v, float) for v in face["box"])
    files = records["astronaut.jpg"]["files"]
    aligned = Image.open(out / files["aligned_0"])
    context = Image.open(out / files["context_0"])
    assert aligned.size == context.size == (112, 112)
    # the aligned crop is a face again, its eyes where the template puts them
    again = detect(torch.from_numpy(np.asarray(aligned.resize((224, 224))).copy()), load_mtcnn(
        str(mtcnn_dir()), torch.device("cpu")), Settings(min_size=40))  # fmt: skip
    assert len(again.boxes) == 1
    eyes = again.landmarks[0, :2].numpy() / 2
    assert np.abs(eyes - TEMPLATE_112[:2]).max() < 6
    drawn = np.asarray(Image.open(out / files["annotated"]).convert("RGB"), dtype=int)
    plain = np.asarray(Image.open(photos["astronaut"]).convert("RGB"), dtype=int)
    x1, y1, _x2, y2 = (round(v) for v in face["box"])
    assert (
        np.abs(drawn[y1 : y2 + 1, x1 - 1 : x1 + 2] - plain[y1 : y2 + 1, x1 - 1 : x1 + 2]).mean()
        > 20
    )


def test_bad_weights_and_options_are_clear(cli, photos, tmp_path):
    image = photos["astronaut"]
    missing = cli(["faces", image, "-w", tmp_path / "nowhere", "-q"])
    assert missing.exit_code == 2 and "weights folder not found" in missing.stderr
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "pnet.pt").write_bytes((mtcnn_dir() / "pnet.pt").read_bytes())
    result = cli(["faces", image, "-w", partial, "-q"])
    assert result.exit_code == 2 and "rnet.pt, onet.pt" in result.stderr
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for name, source in (("pnet", "onet"), ("rnet", "rnet"), ("onet", "onet")):
        (swapped / f"{name}.pt").write_bytes((mtcnn_dir() / f"{source}.pt").read_bytes())
    result = cli(["faces", image, "-w", swapped, "-q"])
    assert result.exit_code == 3 and "not an MTCNN pnet state dict" in result.stderr
    result = cli(["faces", image, "-w", mtcnn_dir(), "--thresholds", "0.6,0.7", "-q"])
    assert result.exit_code == 2 and "three scores" in result.stderr
    offline = cli(["faces", image, "-q"])  # DEFAULT, nothing cached, CVTASKS_OFFLINE=1
    assert offline.exit_code == 3
    assert "cvtasks models pull mtcnn" in offline.stderr and "-w DIR" in offline.stderr


def test_models_know_mtcnn(cli):
    listed = cli(["models", "list", "--task", "faces", "-f", "json"])
    assert listed.exit_code == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["mtcnn"]
    info = cli(["models", "info", "mtcnn"])
    assert info.exit_code == 0, info.stderr
    files = json.loads(info.stdout)["files"]
    assert files["pnet"]["sha256"].startswith("a2a71925")
    pulled = cli(["models", "pull", "mtcnn"])  # offline here: the fix, exit 3
    assert pulled.exit_code == 3 and "pnet.pt" in pulled.stderr


def test_track_gives_a_moving_face_one_id(cli, tmp_path):
    import av

    face = Image.fromarray(skimage_rgb("astronaut")).crop((150, 30, 300, 200))
    video = tmp_path / "walk.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 320, "yuv420p"
        for k in range(12):
            canvas = Image.new("RGB", (480, 320), (90, 110, 130))
            canvas.paste(face, (20 + 22 * k, 70))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = cli(["faces", video, "-w", mtcnn_dir(), "--track", "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert len(records) == 12
    ids = {p["track_id"] for r in records for p in r["predictions"]}
    assert ids == {1} and all(len(r["predictions"]) == 1 for r in records)


def test_tiny_faces_need_a_smaller_min_size_and_corrupt_files_are_said(cli, photos, tmp_path):
    from broken_media import flip_bits
    from liveness_set import astronaut_face

    face = astronaut_face()
    canvas = Image.new("RGB", (320, 240), (90, 110, 130))
    canvas.paste(face.resize((13, 17), Image.Resampling.BICUBIC), (150, 100))  # a 13-px face
    tiny = tmp_path / "tiny.png"
    canvas.save(tiny)
    (tmp_path / "flipped.jpg").write_bytes(flip_bits(photos["astronaut"].read_bytes(), 20))
    args = ["faces", tiny, tmp_path / "flipped.jpg", "-w", mtcnn_dir(), "-f", "jsonl", "-q"]
    default = cli(args)
    assert default.exit_code == 0, default.stderr
    found = {Path(r["source"]).name: r["predictions"] for r in jsonl(default.stdout)}
    assert found["tiny.png"] == []  # below the default 20 px
    assert "flipped.jpg: corrupt JPEG" in default.stderr  # decoded, and said
    smaller = cli([*args[:2], "-w", mtcnn_dir(), "--min-size", "8", "-f", "jsonl", "-q"])
    (face_record,) = jsonl(smaller.stdout)[0]["predictions"]
    assert iou(face_record["box"], [150, 100, 163, 117]) > 0.3


def test_the_report_shows_faces(cli, photos, tmp_path):
    out = tmp_path / "out"
    ran = cli(["faces", photos["astronaut"], photos["coffee"], "-w", mtcnn_dir(), "-o", out,
               "--save-images", "-q", "--report"])  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    text = (out / "report" / "data.js").read_text()
    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    assert [i["caption"] for i in data["items"]] == ["face", "no face"]
    titles = [s["svg"].split('aria-label="')[1].split('"')[0] for s in data["summaries"]]
    assert titles == ["detections per class", "detection scores"]

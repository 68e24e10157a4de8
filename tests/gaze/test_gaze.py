"""`cvtasks gaze`: head decoding on crafted checkpoints, the public key names, the face-box
rule, and a small gaze regressor trained here on synthetic faces, measured through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from gaze_faces import make_set
from helpers import jsonl
from PIL import Image
from torchvision.models.resnet import BasicBlock, Bottleneck

from cvtasks.gaze.faces import face_from_keypoints, read_faces
from cvtasks.gaze.model import (
    BIN_LAYOUTS,
    L2CSNet,
    architecture_of,
    decode,
    face_tensor,
    gaze_vector,
)

SIZE = 64


def crafted(bins: int, yaw_bin: int, pitch_bin: int) -> dict[str, torch.Tensor]:
    """A small L2CS checkpoint whose heads always answer one bin each."""
    torch.manual_seed(0)
    model = L2CSNet(BasicBlock, [1, 1, 1, 1], bins)
    state = model.state_dict()
    for head, chosen in (("fc_yaw_gaze", yaw_bin), ("fc_pitch_gaze", pitch_bin)):
        state[f"{head}.weight"] = torch.zeros_like(state[f"{head}.weight"])
        state[f"{head}.bias"] = torch.full((bins,), -50.0)
        state[f"{head}.bias"][chosen] = 50.0
    return state


@pytest.mark.parametrize(("bins", "yaw_bin", "pitch_bin"), [(90, 50, 40), (28, 3, 20)])
def test_known_bins_decode_to_known_angles(bins, yaw_bin, pitch_bin):
    width, start = BIN_LAYOUTS[bins]
    state = crafted(bins, yaw_bin, pitch_bin)
    model = L2CSNet(*architecture_of(state))
    model.load_state_dict(state)
    yaw, pitch = model.eval()(torch.zeros(1, 3, 32, 32))
    assert decode(yaw, bins).item() == pytest.approx(yaw_bin * width + start, abs=1e-3)
    assert decode(pitch, bins).item() == pytest.approx(pitch_bin * width + start, abs=1e-3)
    # the expectation, not the arg-max: half the mass on two bins lands between them
    logits = torch.full((1, bins), -50.0)
    logits[0, [2, 3]] = 0.0
    assert decode(logits, bins).item() == pytest.approx(2.5 * width + start, abs=1e-3)


def test_the_public_checkpoint_layout_loads():
    """Keys as in L2CSNet_gaze360.pkl: conv1..layer4 of a ResNet-50, the two heads and the
    vestigial fc_finetune; also saved from DataParallel (module. prefix)."""
    state = L2CSNet(Bottleneck, [3, 4, 6, 3], 90).state_dict()
    assert "fc.weight" not in state and "fc_finetune.weight" in state
    assert tuple(state["fc_finetune.weight"].shape) == (3, 2051)
    assert tuple(state["fc_yaw_gaze.weight"].shape) == (90, 2048)
    assert {k.split(".")[0] for k in state} == {
        "conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc_yaw_gaze", "fc_pitch_gaze", "fc_finetune",
    }  # fmt: skip
    block, layers, bins = architecture_of(state)
    assert (block, layers, bins) == (Bottleneck, [3, 4, 6, 3], 90)
    from cvtasks.weights import _as_state_dict

    wrapped = _as_state_dict({f"module.{k}": v for k, v in state.items()}, "x")  # type: ignore[arg-type]
    assert architecture_of(wrapped) == (Bottleneck, [3, 4, 6, 3], 90)


def test_cli_reads_the_first_head_as_yaw(cli, tmp_path):
    state = crafted(90, 50, 40)  # yaw 50*4-180 = 20, pitch 40*4-180 = -20
    weights = tmp_path / "l2cs.pkl"
    torch.save(state, weights)
    image = tmp_path / "face.png"
    Image.new("RGB", (120, 100), (120, 90, 70)).save(image)
    faces = tmp_path / "faces.jsonl"
    faces.write_text(
        json.dumps(
            {
                "source": str(image),
                "frame": None,
                "predictions": [{"box": [20, 10, 90, 95], "score": 0.9}],
            }
        )
        + "\n"
    )
    out = tmp_path / "out"
    result = cli(
        [
            "gaze",
            image,
            "-w",
            weights,
            "--faces",
            faces,
            "--input-size",
            "64",
            "-f",
            "jsonl",
            "-o",
            out,
            "--save-images",
        ]
    )
    assert result.exit_code == 0, result.stderr
    (face,) = jsonl(result.stdout)[0]["predictions"]
    assert face["yaw"] == pytest.approx(20.0, abs=1e-3) and face["pitch"] == pytest.approx(
        -20.0, abs=1e-3
    )
    assert face["box"] == [20, 10, 90, 95] and face["score"] == 0.9
    assert face["vector"] == pytest.approx(gaze_vector(20.0, -20.0), abs=1e-6)
    assert np.linalg.norm(face["vector"]) == pytest.approx(1.0)
    assert (out / "face.png").is_file()


def test_without_weights_it_says_where_to_get_them(cli, photos):
    result = cli(["gaze", photos["astronaut"]])
    assert result.exit_code == 3 and "github.com/Ahmednull/L2CS-Net" in result.stderr
    assert "not on a package registry" in result.stderr


def test_gaze_vector_convention():
    assert gaze_vector(0, 0) == pytest.approx([0, 0, -1])  # straight at the camera
    assert gaze_vector(0, 30)[1] < 0  # looking up: y (down) is negative
    assert gaze_vector(30, 0)[0] < 0  # positive yaw: towards the image's left


def test_face_box_rule_on_hand_made_keypoints():
    points = {"nose": [100, 110, 5.0], "left_eye": [110, 100, 5.0], "right_eye": [90, 100, 5.0],
              "left_ear": [125, 105, 5.0], "right_ear": [75, 105, 5.0]}  # fmt: skip
    face = face_from_keypoints(points, 0.9)
    assert face is not None and face.eyes == (100, 100)
    # ears 50 apart beat 2.2 x 20 = 44: 50 wide, 65 high, eyes 40 % down
    assert face.box == pytest.approx([75, 74, 125, 139])
    no_ears = {k: v for k, v in points.items() if "ear" not in k}
    assert face_from_keypoints(no_ears, 0.9).box == pytest.approx([78, 77.12, 122, 134.32])
    hidden = dict(points, left_eye=[110, 100, -1.0])
    assert face_from_keypoints(hidden, 0.9) is None  # a profile: one eye, no face box


def test_faces_file_errors_name_the_line(tmp_path):
    from cvtasks.errors import UsageError

    bad = tmp_path / "faces.jsonl"
    bad.write_text(
        '{"source": "a.jpg", "frame": null, "predictions": [{"box": [1, 2, 3, 4]}]}\n{"source": 1}\n'
    )
    with pytest.raises(UsageError, match=r"faces\.jsonl:2"):
        read_faces(str(bad))


def test_a_small_regressor_trained_here_is_within_ten_degrees(cli, tmp_path):
    """Crops, preprocessing and decoding end to end: train on synthetic faces (pupils point
    where the face looks), then measure through `cvtasks gaze --faces`."""
    torch.manual_seed(0)
    train, test = make_set(400, seed=0), make_set(40, seed=1)
    x = torch.stack([face_tensor(image, box, SIZE) for image, box, _, _ in train])
    y = torch.tensor([[yaw, pitch] for _, _, yaw, pitch in train])
    model = L2CSNet(BasicBlock, [1, 1, 1, 1], 28)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    width, start = BIN_LAYOUTS[28]
    cross, squared = torch.nn.CrossEntropyLoss(), torch.nn.MSELoss()
    for _ in range(6):  # L2CS-Net's loss: bin cross-entropy plus a regression term
        model.train()
        order = torch.randperm(len(x))
        for k in range(0, len(x), 32):
            idx = order[k : k + 32]
            yaw, pitch = model(x[idx])
            target = ((y[idx] - start) / width).floor().long().clamp(0, 27)
            loss = cross(yaw, target[:, 0]) + cross(pitch, target[:, 1])
            loss = loss + 0.1 * (
                squared(decode(yaw, 28), y[idx, 0]) + squared(decode(pitch, 28), y[idx, 1])
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    weights = tmp_path / "tiny_l2cs.pth"
    torch.save(model.eval().state_dict(), weights)
    records = []
    for i, (image, box, _, _) in enumerate(test):
        Image.fromarray(image).save(tmp_path / f"face{i:02d}.png")
        records.append(
            {
                "source": str(tmp_path / f"face{i:02d}.png"),
                "frame": None,
                "predictions": [{"box": box, "score": 1.0}],
            }
        )
    faces = tmp_path / "faces.jsonl"
    faces.write_text("".join(json.dumps(r) + "\n" for r in records))
    images = [r["source"] for r in records]
    result = cli(
        [
            "gaze",
            *images,
            "-w",
            weights,
            "--faces",
            faces,
            "--input-size",
            str(SIZE),
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    errors = []
    for record, (_, _, yaw, pitch) in zip(jsonl(result.stdout), test, strict=True):
        (face,) = record["predictions"]
        cosine = float(np.dot(face["vector"], gaze_vector(yaw, pitch)))
        errors.append(math.degrees(math.acos(min(1.0, cosine))))
    print(f"gaze: mean angular error {np.mean(errors):.2f} degrees over {len(errors)} faces")
    assert np.mean(errors) < 10.0, np.mean(errors)


def test_faces_keep_their_track_id_over_a_video(cli, tmp_path):
    from gaze_faces import draw_face

    rng = np.random.default_rng(5)
    frames, lines = [], []
    for number in range(4):
        image, box = draw_face(10.0, 0.0, rng)
        frames.append(Image.fromarray(image))
        lines.append(
            json.dumps(
                {
                    "source": str(tmp_path / "clip.gif"),
                    "frame": number,
                    "predictions": [{"box": box, "score": 0.9}],
                }
            )
        )
    frames[0].save(
        tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    (tmp_path / "faces.jsonl").write_text("\n".join(lines) + "\n")
    weights = tmp_path / "l2cs.pkl"
    torch.save(crafted(28, 14, 14), weights)
    args = ["gaze", tmp_path / "clip.gif", "-w", weights, "--faces", tmp_path / "faces.jsonl"]
    result = cli([*args, "--input-size", "32", "--track", "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    ids = [r["predictions"][0]["track_id"] for r in jsonl(result.stdout)]
    assert ids == [1, 1, 1, 1]


@pytest.mark.parametrize("spec", ["L2CSNet_gaze360.pkl", "./L2CSNet_gaze360.pkl"])
def test_a_missing_weights_file_is_one_usage_error_everywhere(cli, photos, spec):
    gaze = cli(["gaze", photos["astronaut"], "-w", spec])
    classify = cli(["classify", photos["astronaut"], "-m", "resnet18", "-w", "missing.pth"])
    assert gaze.exit_code == classify.exit_code == 2
    assert "weights file not found: L2CSNet_gaze360.pkl" in gaze.stderr
    assert "weights file not found: missing.pth" in classify.stderr


def test_models_knows_the_gaze_model(cli):
    listed = cli(["models", "list", "--task", "gaze", "-f", "jsonl"])
    assert listed.exit_code == 0, listed.stderr
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["l2cs"]
    info = cli(["models", "info", "l2cs"])
    assert info.exit_code == 0 and json.loads(info.stdout)["task"] == "gaze"
    pulled = cli(["models", "pull", "l2cs"])
    assert pulled.exit_code == 3 and "pass it with -w FILE" in pulled.stderr


def test_an_input_missing_from_the_faces_file_is_said(cli, tmp_path):
    weights = tmp_path / "l2cs.pkl"
    torch.save(crafted(90, 50, 40), weights)
    listed, unlisted = tmp_path / "listed.png", tmp_path / "unlisted.png"
    for image in (listed, unlisted):
        Image.new("RGB", (120, 100), (120, 90, 70)).save(image)
    faces = tmp_path / "faces.jsonl"
    record = {"source": str(listed), "frame": None, "predictions": [{"box": [20, 10, 90, 95]}]}
    faces.write_text(json.dumps(record) + "\n")
    result = cli(["gaze", listed, unlisted, "-w", weights, "--faces", faces, "--input-size", "64",
                  "-f", "jsonl"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"has no entry for {unlisted}: no faces there" in result.stderr
    assert str(listed) + ":" not in result.stderr and result.stderr.count("no entry") == 1
    counts = [len(r["predictions"]) for r in jsonl(result.stdout)]
    assert counts == [1, 0]


def test_faces_come_from_mtcnn_by_default(cli, photos, tmp_path):
    """Without --faces, gaze looks at MTCNN's faces (keypoint faces stay an option)."""
    from real_weights import mtcnn_dir

    weights = tmp_path / "l2cs.pkl"
    torch.save(crafted(90, 50, 40), weights)
    args = ["gaze", photos["astronaut"], "-w", weights, "--input-size", "64", "-f", "jsonl", "-q"]
    result = cli([*args, "--face-weights", mtcnn_dir()])
    assert result.exit_code == 0, result.stderr
    (face,) = jsonl(result.stdout)[0]["predictions"]
    assert face["box"] == pytest.approx([180, 60, 269, 173], abs=3)  # the face, not the suit
    assert face["yaw"] == pytest.approx(20.0, abs=1e-3)
    offline = cli(args)  # DEFAULT MTCNN weights, nothing cached, offline
    assert offline.exit_code == 3 and "cvtasks models pull mtcnn" in offline.stderr
